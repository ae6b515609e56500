"""Translate Keel's merged Compose model into a ``version: "3.9"`` Docker Swarm stack.

``docker stack deploy`` rejects or silently drops parts of the Compose files (see docs/cluster.md,
"What Swarm changes"): here each one becomes its Swarm equivalent, and what Swarm cannot express
is returned as a note (printed by ``keel stack render`` and kept in the file under
``x-keel-unenforced``), never dropped without a word.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.stack.compose_files import StackError, load_merged

STACK_VERSION = "3.9"
ENVIRONMENTS = ("dev", "test", "prod")
APP_SERVICES = ("api", "worker", "worker-gpu")
STATEFUL = {"postgres": "keel.db", "redis": "keel.redis"}
EDGE_LABEL = "keel.edge"
GPU_LABEL = "keel.gpu"
# uid of the app and of postgres/redis in every Keel image (Containerfile, containers/*).
APP_UID = "10001"
DATA_UID = "999"
CREDENTIALS_DIR = "/run/keel-credentials"
# Kept as-is: Swarm converts these keys one to one (docker/cli compose/convert/service.go).
_KEPT = (
    "image",
    "user",
    "init",
    "read_only",
    "cap_add",
    "cap_drop",
    "entrypoint",
    "command",
    "environment",
    "healthcheck",
    "stop_grace_period",
    "stop_signal",
    "logging",
    "sysctls",
    "ulimits",
    "working_dir",
    "hostname",
)
_SIZE = re.compile(r"^(?P<number>\d+(?:\.\d+)?)(?P<unit>[kmgKMG]?)[bB]?$")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


@dataclass(frozen=True, slots=True)
class StackInputs:
    """Where the rendered stack takes its files from. Paths are absolute in the output."""

    env: str
    root: Path
    gpu: bool = False
    age_key: Path | None = None
    credentials_dir: Path | None = None
    environ: Mapping[str, str] = field(default_factory=dict)

    @property
    def stack_name(self) -> str:
        return f"keel-{self.env}"

    def compose_files(self) -> list[Path]:
        files = [self.root / "compose.yaml", self.root / "configs" / self.env / "compose.yaml"]
        if self.gpu:
            files.append(self.root / "compose.gpu.yaml")
        return files


@dataclass(slots=True)
class Rendered:
    stack: dict[str, Any]
    notes: list[str]


def parse_size(text: str, where: str) -> int:
    """``64m`` / ``1g`` / ``256M`` → bytes (tmpfs sizes, shm_size)."""
    match = _SIZE.match(str(text).strip())
    if not match:
        raise StackError(f"{where}: {text!r} is not a size such as 64m or 1g")
    return int(float(match["number"]) * _UNITS[match["unit"].lower()])


def _tmpfs_mount(spec: str, where: str, notes: list[str]) -> dict[str, Any]:
    """``/tmp:size=64m,mode=1777`` → a tmpfs mount (``tmpfs:`` itself is ignored by Swarm)."""
    target, _, option_text = spec.partition(":")
    options = dict([*part.split("=", 1), ""][:2] for part in option_text.split(",") if part.strip())
    mount: dict[str, Any] = {"type": "tmpfs", "target": target}
    if "size" in options:
        mount["tmpfs"] = {"size": parse_size(options["size"], where)}
    lost = sorted(name for name in options if name not in {"size", "mode"})
    if options.get("mode", "1777") != "1777":
        lost.append("mode")
    if lost:
        notes.append(
            f"{where}: tmpfs {target} options {', '.join(lost)} cannot be set on Swarm "
            "(the mount is root-owned, mode 1777)"
        )
    return mount


def _restart_policy(restart: str | None) -> dict[str, Any]:
    # Swarm's default for a missing policy is "any, every 5 s", even for restart: "no".
    condition = {"no": "none", "on-failure": "on-failure"}.get(str(restart), "any")
    return {"condition": condition, "delay": "5s", "window": "30s"}


def _port(entry: Any, where: str, notes: list[str]) -> dict[str, Any]:
    """``"127.0.0.1:8080:8080"`` → a host-mode port (no IPVS routing mesh; see docs)."""
    if isinstance(entry, Mapping):
        return {**entry, "mode": "host"}
    parts = str(entry).split(":")
    if len(parts) == 3:
        host_ip, published, target = parts
        notes.append(
            f"{where}: port {entry}: Swarm cannot bind a host address ({host_ip}); it listens on "
            "every address of the node: firewall it or keep the node private"
        )
    elif len(parts) == 2:
        published, target = parts
    else:
        published = target = parts[0]
    target, _, protocol = target.partition("/")
    return {
        "target": int(target),
        "published": int(published),
        "protocol": protocol or "tcp",
        "mode": "host",
    }


def _version(path: Path, where: str) -> str:
    """A short content hash: Swarm secrets and configs are immutable, so a change is a new name."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except OSError as exc:
        raise StackError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None


def age_key_path(inputs: StackInputs) -> Path:
    if inputs.age_key is not None:
        return inputs.age_key
    if inputs.environ.get("KEEL_AGE_KEY_FILE"):
        return Path(inputs.environ["KEEL_AGE_KEY_FILE"]).expanduser()
    if inputs.env == "test":
        return inputs.root / "secrets" / "keys" / "test.agekey"
    home = inputs.environ.get("HOME", str(Path.home()))
    config_home = inputs.environ.get("XDG_CONFIG_HOME") or f"{home}/.config"
    return Path(config_home) / "keel" / "keys" / f"{inputs.env}.agekey"


class _Translator:
    def __init__(self, inputs: StackInputs, model: dict[str, Any]) -> None:
        self.inputs = inputs
        self.model = model
        self.notes: list[str] = []
        self.secrets: dict[str, dict[str, Any]] = {}
        self.configs: dict[str, dict[str, Any]] = {}

    # --- versioned secrets and configs ---
    def _object_name(self, key: str, path: Path, where: str) -> str:
        return f"{self.inputs.stack_name}_{key}_{_version(path, where)}"

    def add_secret(self, key: str, path: Path, where: str) -> None:
        path = path.resolve()
        self.secrets[key] = {"name": self._object_name(key, path, where), "file": str(path)}

    def add_config(self, key: str, path: Path, where: str) -> None:
        path = path.resolve()
        self.configs[key] = {"name": self._object_name(key, path, where), "file": str(path)}

    def collect_objects(self) -> None:
        env, root = self.inputs.env, self.inputs.root
        self.add_secret("age_key", age_key_path(self.inputs), f"the {env} age key")
        self.add_secret("app_secrets", root / "secrets" / f"{env}.yaml", f"secrets/{env}.yaml")
        self.add_config("app_env", root / "configs" / env / "app.env", f"configs/{env}/app.env")
        credentials = self.inputs.credentials_dir or root / ".stack" / env / "credentials"
        for name in ("db_password", "redis_password"):
            self.add_secret(name, credentials / name, f"credentials ({name})")

    # --- services ---
    def _app_secrets(self) -> list[dict[str, Any]]:
        owner = {"uid": APP_UID, "gid": APP_UID, "mode": 0o400}
        return [
            {"source": "age_key", "target": "age_key", **owner},
            {"source": "app_secrets", "target": f"/app/secrets/{self.inputs.env}.yaml", **owner},
        ]

    def _volumes(self, name: str, service: Mapping[str, Any]) -> list[dict[str, Any]]:
        mounts: list[dict[str, Any]] = []
        for entry in service.get("volumes", []):
            source, target, *rest = [*str(entry).split(":"), ""]
            if isinstance(entry, Mapping):
                mounts.append(dict(entry))
            elif source in ("credentials", "./configs"):
                # Replaced: credentials by Swarm secrets, the configs bind mount by the
                # app_env config (a bind mount would have to exist on every node).
                continue
            elif source.startswith((".", "/")):
                if target == "/etc/nginx/conf.d/default.conf":
                    self.add_config("nginx_conf", self.inputs.root / source, f"{name}.volumes")
                    continue
                raise StackError(
                    f"services.{name}.volumes: bind mount {entry} has no Swarm equivalent "
                    "(it would have to exist on every node): use a config or a named volume"
                )
            else:
                mount: dict[str, Any] = {"type": "volume", "source": source, "target": target}
                if rest and rest[0] == "ro":
                    mount["read_only"] = True
                mounts.append(mount)
        for spec in service.get("tmpfs", []):
            mounts.append(_tmpfs_mount(str(spec), f"services.{name}.tmpfs", self.notes))
        if "shm_size" in service:
            size = parse_size(str(service["shm_size"]), f"services.{name}.shm_size")
            shm = "/dev/shm"  # noqa: S108 - a mount target, not a file we write
            mounts.append({"type": "tmpfs", "target": shm, "tmpfs": {"size": size}})
        return mounts

    def _healthcheck(self, name: str, check: Mapping[str, Any]) -> dict[str, Any]:
        test = list(check.get("test", []))
        if test[:3] == ["CMD", "keel", "healthcheck"] and "--ready-once" not in test:
            # Swarm kills an unhealthy task: gate first traffic on readiness, then only
            # liveness, so a DB or Redis outage does not restart every task (docs/cluster.md).
            test.append("--ready-once")
        return {**check, "test": test} if test else dict(check)

    def _resources(self, name: str, service: Mapping[str, Any]) -> dict[str, Any]:
        limits: dict[str, Any] = {}
        if "cpus" in service:
            limits["cpus"] = str(service["cpus"])
        if "mem_limit" in service:
            limits["memory"] = str(service["mem_limit"])
        if "pids_limit" in service:
            limits["pids"] = int(service["pids_limit"])
        resources: dict[str, Any] = {"limits": limits} if limits else {}
        reservations = service.get("deploy", {}).get("resources", {}).get("reservations", {})
        if reservations.get("devices"):
            self.notes.append(
                f"services.{name}: GPU device reservations cannot be expressed on Swarm: the "
                f"service is placed on nodes labelled {GPU_LABEL}=true, whose dockerd must run "
                "the NVIDIA runtime as default-runtime (docs/cluster.md)"
            )
        return resources

    def _placement(self, name: str) -> dict[str, Any]:
        if name in STATEFUL:
            return {"constraints": [f"node.labels.{STATEFUL[name]} == true"]}
        if name == "proxy":
            return {"constraints": [f"node.labels.{EDGE_LABEL} == true"]}
        if name == "worker-gpu":
            return {"constraints": [f"node.labels.{GPU_LABEL} == true"]}
        return {"preferences": [{"spread": "node.id"}]}

    def _update_config(self, name: str, *, has_ports: bool) -> dict[str, Any]:
        if name in APP_SERVICES and not has_ports:
            # Health-gated, one task at a time, the new task up before the old one stops (the
            # old worker then drains within its stop grace period); any failure rolls back.
            return {
                "parallelism": 1,
                "delay": "2s",
                "order": "start-first",
                "failure_action": "rollback",
                "monitor": "15s",
                "max_failure_ratio": 0,
            }
        # Stateful services: two tasks on one volume must never run; host ports cannot be
        # bound twice on one node.
        return {"parallelism": 1, "order": "stop-first", "failure_action": "rollback"}

    def _rollback_config(self, update: Mapping[str, Any]) -> dict[str, Any]:
        return {"parallelism": 1, "order": update["order"], "failure_action": "pause"}

    def service(self, name: str, service: Mapping[str, Any]) -> dict[str, Any]:
        where = f"services.{name}"
        out: dict[str, Any] = {key: service[key] for key in _KEPT if key in service}
        if "healthcheck" in out:
            out["healthcheck"] = self._healthcheck(name, out["healthcheck"])
        for dropped in ("security_opt",):
            for option in service.get(dropped, []):
                if str(option).startswith("no-new-privileges"):
                    self.notes.append(
                        f"{where}: security_opt {option}: not settable per Swarm service; "
                        'enforced by the node daemons ("no-new-privileges": true in '
                        "daemon.json, containers/swarm/cluster.sh sets it)"
                    )
                else:
                    self.notes.append(f"{where}: security_opt {option}: not supported by Swarm")
        if "pull_policy" in service:
            self.notes.append(
                f"{where}: pull_policy {service['pull_policy']}: replaced by deploying with "
                "--resolve-image never (nodes use the image they have or pull it by tag)"
            )
        mounts = self._volumes(name, service)
        if mounts:
            out["volumes"] = mounts
        if name in APP_SERVICES:
            out["secrets"] = self._app_secrets()
            out["configs"] = [
                {"source": "app_env", "target": f"/app/configs/{self.inputs.env}/app.env"}
            ]
        elif name in STATEFUL:
            secret = "db_password" if name == "postgres" else "redis_password"
            out["secrets"] = [
                {
                    "source": secret,
                    "target": f"{CREDENTIALS_DIR}/{secret}",
                    "uid": DATA_UID,
                    "gid": DATA_UID,
                    "mode": 0o400,
                }
            ]
        if "nginx_conf" in self.configs and name == "proxy":
            out["configs"] = [{"source": "nginx_conf", "target": "/etc/nginx/conf.d/default.conf"}]
        ports = [_port(entry, f"{where}.ports", self.notes) for entry in service.get("ports", [])]
        if ports:
            out["ports"] = ports
        update = self._update_config(name, has_ports=bool(ports))
        replicas = 1 if name in STATEFUL or name == "proxy" else int(service.get("scale", 1))
        deploy: dict[str, Any] = {
            "mode": "replicated",
            "replicas": replicas,
            # No IPVS here (and none needed): clients resolve every task's address by DNS.
            "endpoint_mode": "dnsrr",
            "restart_policy": _restart_policy(service.get("restart")),
            "update_config": update,
            "rollback_config": self._rollback_config(update),
            "placement": self._placement(name),
        }
        resources = self._resources(name, service)
        if resources:
            deploy["resources"] = resources
        out["deploy"] = deploy
        return out

    def migrate_job(self, service: Mapping[str, Any]) -> dict[str, Any]:
        """The migrate one-shot, run by ``keel stack deploy`` as a Swarm job before the rollout."""
        out: dict[str, Any] = {key: service[key] for key in _KEPT if key in service}
        out.pop("healthcheck", None)
        out["volumes"] = [
            mount for mount in self._volumes("migrate", service) if mount["type"] == "tmpfs"
        ]
        out["secrets"] = self._app_secrets()
        out["configs"] = [
            {"source": "app_env", "target": f"/app/configs/{self.inputs.env}/app.env"}
        ]
        limits = self._resources("migrate", service).get("limits")
        if limits:
            out["limits"] = limits
        return out


def render(inputs: StackInputs) -> Rendered:
    """The stack for ``inputs.env`` (see the module docstring)."""
    if inputs.env not in ENVIRONMENTS:
        raise StackError(
            f"ENV={inputs.env!r} has no Compose overlay; use one of {', '.join(ENVIRONMENTS)}"
        )
    for path in inputs.compose_files():
        if not path.is_file():
            raise StackError(f"{path} does not exist (run from the repository root)")
    environ = {**inputs.environ, "APP_ENV": inputs.env}
    model = load_merged(inputs.compose_files(), environ)
    translator = _Translator(inputs, model)
    translator.collect_objects()
    services: dict[str, Any] = {}
    migrate: dict[str, Any] | None = None
    ordered: list[str] = []
    for name, service in model.get("services", {}).items():
        if name == "credentials":
            translator.notes.append(
                "services.credentials: not deployed: the DB and Redis passwords reach postgres "
                "and redis as Swarm secrets derived from the same SOPS file"
            )
        elif name == "migrate":
            migrate = translator.migrate_job(service)
        else:
            services[name] = translator.service(name, service)
        if service.get("depends_on") and name not in ("credentials", "migrate"):
            ordered.append(name)
    if ordered:
        translator.notes.append(
            f"depends_on ({', '.join(ordered)}): Swarm has no start order; `keel stack deploy` "
            "starts postgres and redis, runs the migrate job, then rolls out the rest "
            "(readiness gates traffic)"
        )
    if migrate is None:
        raise StackError(f"{inputs.compose_files()[0]}: no migrate service to run as a job")
    volumes = {
        name: spec or {}
        for name, spec in (model.get("volumes") or {}).items()
        if name != "credentials"
    }
    stack: dict[str, Any] = {
        "version": STACK_VERSION,
        "services": services,
        "networks": {"default": {"driver": "overlay", "attachable": True}},
        "volumes": volumes,
        "secrets": translator.secrets,
        "configs": translator.configs,
        "x-keel-migrate": migrate,
        "x-keel-unenforced": sorted(set(translator.notes)),
    }
    return Rendered(stack=stack, notes=sorted(set(translator.notes)))


def escape_dollars(value: Any) -> Any:
    """``$`` → ``$$``: ``docker stack deploy`` interpolates the file again."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, Mapping):
        return {key: escape_dollars(item) for key, item in value.items()}
    if isinstance(value, list):
        return [escape_dollars(item) for item in value]
    return value
