"""`keel stack render`: the Swarm stack keeps, key by key, what the prod overlay asks for.

The expectations are read from configs/prod/compose.yaml itself (through the same Compose
merge), so hardening added to the overlay is checked here without editing this file.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from stack_roots import make_root

from keel.cli import main
from keel.stack.compose_files import StackError, interpolate, load_merged
from keel.stack.render import StackInputs, escape_dollars, parse_size, render

STACK_CLI = Path("/usr/local/bin/docker")


def inputs(root: Path, env: str = "prod", **environ: str) -> StackInputs:
    return StackInputs(
        env=env,
        root=root,
        gpu=bool(environ.pop("GPU", "")),
        age_key=root / "age.key",
        credentials_dir=root / "creds",
        environ=environ,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path)


@pytest.fixture
def overlay(root: Path) -> dict[str, Any]:
    """What Compose runs for prod: base + prod overlay, merged as Compose merges them."""
    files = [root / "compose.yaml", root / "configs/prod/compose.yaml"]
    return load_merged(files, {"APP_ENV": "prod"})


@pytest.fixture
def stack(root: Path) -> dict[str, Any]:
    return render(inputs(root)).stack


def all_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for item in value.values() for k in all_keys(item)}
    if isinstance(value, list):
        return {k for item in value for k in all_keys(item)}
    return set()


def tmpfs_mounts(service: dict[str, Any]) -> dict[str, int | None]:
    return {
        mount["target"]: mount.get("tmpfs", {}).get("size")
        for mount in service.get("volumes", [])
        if mount["type"] == "tmpfs"
    }


LONG_RUNNING = ("postgres", "redis", "api", "worker", "proxy")


def test_every_prod_hardening_survives(overlay: dict[str, Any], stack: dict[str, Any]) -> None:
    services = stack["services"]
    assert set(services) == set(LONG_RUNNING)
    for name in LONG_RUNNING:
        want, got = overlay["services"][name], services[name]
        assert want["read_only"] is True
        assert got["read_only"] is True, name
        assert got["cap_drop"] == want["cap_drop"] == ["ALL"], name
        assert got["user"] == want["user"], name
        assert got.get("init") == want.get("init"), name
        assert got["logging"] == want["logging"], name
        assert got["stop_grace_period"] == want["stop_grace_period"], name
        for key in ("interval", "timeout", "retries", "start_period"):
            assert got["healthcheck"][key] == want["healthcheck"][key], (name, key)
        for spec in want["tmpfs"]:
            target, _, options = spec.partition(":")
            size = dict(o.split("=", 1) for o in options.split(","))["size"]
            assert tmpfs_mounts(got)[target] == parse_size(size, name), (name, target)
        if "shm_size" in want:
            assert tmpfs_mounts(got)["/dev/shm"] == parse_size(want["shm_size"], name)
        limits = got["deploy"]["resources"]["limits"]
        assert limits["cpus"] == str(want["cpus"]), name
        assert limits["memory"] == want["mem_limit"], name
        if "pids_limit" in want:
            assert limits["pids"] == want["pids_limit"], name
        assert want["restart"] == "unless-stopped"
        assert got["deploy"]["restart_policy"]["condition"] == "any", name
        assert got["deploy"]["endpoint_mode"] == "dnsrr", name


def test_replicas_follow_the_overlay_and_its_variables(root: Path) -> None:
    default = render(inputs(root)).stack["services"]
    assert default["api"]["deploy"]["replicas"] == 2
    assert default["worker"]["deploy"]["replicas"] == 2
    scaled = render(inputs(root, API_REPLICAS="4", API_MEMORY="768m")).stack["services"]
    assert scaled["api"]["deploy"]["replicas"] == 4
    assert scaled["api"]["deploy"]["resources"]["limits"]["memory"] == "768m"
    for name in ("postgres", "redis", "proxy"):
        assert default[name]["deploy"]["replicas"] == 1


def test_what_swarm_cannot_express_is_listed(root: Path, overlay: dict[str, Any]) -> None:
    rendered = render(inputs(root))
    notes = "\n".join(rendered.notes)
    assert rendered.stack["x-keel-unenforced"] == rendered.notes
    for name in LONG_RUNNING:
        assert "no-new-privileges=true" in overlay["services"][name]["security_opt"]
        assert f"services.{name}: security_opt no-new-privileges=true" in notes
    assert "127.0.0.1:8080:8080" in notes  # loopback-only publishing
    # The postgres socket dir asked for uid/gid: a Swarm tmpfs cannot carry them.
    assert "services.postgres.tmpfs: tmpfs /var/run/postgresql options gid, uid" in notes
    assert "depends_on" in notes


def test_swarm_rejects_none_of_it(stack: dict[str, Any]) -> None:
    forbidden = {
        "depends_on",
        "tmpfs",  # silently dropped by Swarm: must be a tmpfs mount instead
        "pull_policy",
        "scale",
        "cpus",
        "mem_limit",
        "pids_limit",
        "shm_size",
        "security_opt",
        "restart",
        "build",
    }
    for name, service in stack["services"].items():
        assert not forbidden & set(service), (name, forbidden & set(service))
        assert "devices" not in all_keys(service), name
    assert stack["version"] == "3.9"


def test_updates_are_health_gated_start_first_with_rollback(stack: dict[str, Any]) -> None:
    for name in ("api", "worker"):
        deploy = stack["services"][name]["deploy"]
        update = deploy["update_config"]
        assert update["order"] == "start-first"
        assert update["failure_action"] == "rollback"
        assert update["parallelism"] == 1
        assert update["max_failure_ratio"] == 0
        assert update["monitor"]
        assert deploy["rollback_config"]["order"] == "start-first"
        # Ready once, then liveness: a DB outage must not make Swarm kill every task.
        assert stack["services"][name]["healthcheck"]["test"][-1] == "--ready-once"
        assert {"spread": "node.id"} in deploy["placement"]["preferences"]
    for name in ("postgres", "redis", "proxy"):
        assert stack["services"][name]["deploy"]["update_config"]["order"] == "stop-first"


def test_stateful_and_edge_services_are_pinned(stack: dict[str, Any]) -> None:
    placement = {name: s["deploy"]["placement"] for name, s in stack["services"].items()}
    assert placement["postgres"]["constraints"] == ["node.labels.keel.db == true"]
    assert placement["redis"]["constraints"] == ["node.labels.keel.redis == true"]
    assert placement["proxy"]["constraints"] == ["node.labels.keel.edge == true"]
    ports = stack["services"]["proxy"]["ports"]
    assert ports == [{"target": 8080, "published": 8080, "protocol": "tcp", "mode": "host"}]
    assert "ports" not in stack["services"]["api"]


def test_settings_reach_services_as_versioned_secrets_only(root: Path) -> None:
    stack = render(inputs(root)).stack
    names = {key: spec["name"] for key, spec in stack["secrets"].items()}
    assert set(names) == {"age_key", "app_secrets", "db_password", "redis_password"}
    for name in ("api", "worker"):
        service = stack["services"][name]
        env = service["environment"]
        assert not any("PASSWORD" in key or "SECRET" in key for key in env), env
        targets = {s["source"]: s for s in service["secrets"]}
        assert targets["app_secrets"]["target"] == "/app/secrets/prod.yaml"
        assert targets["age_key"]["uid"] == "10001"
        assert targets["age_key"]["mode"] == 0o400
        assert service["configs"] == [{"source": "app_env", "target": "/app/configs/prod/app.env"}]
    assert stack["services"]["postgres"]["secrets"][0]["source"] == "db_password"
    assert stack["services"]["redis"]["secrets"][0]["source"] == "redis_password"
    # No value of any secret in the rendered file.
    text = yaml.safe_dump(stack)
    for stand_in in ("db-pass-stand-in", "redis-pass-stand-in", "AGE-SECRET-KEY"):
        assert stand_in not in text
    # A changed secret is a new name (Swarm secrets are immutable); the others keep theirs.
    (root / "secrets" / "prod.yaml").write_text("sops: rotated\n")
    rotated = {k: s["name"] for k, s in render(inputs(root)).stack["secrets"].items()}
    assert rotated["app_secrets"] != names["app_secrets"]
    assert rotated["app_secrets"].startswith("keel-prod_app_secrets_")
    assert {k: v for k, v in rotated.items() if k != "app_secrets"} == {
        k: v for k, v in names.items() if k != "app_secrets"
    }


def test_migrate_runs_as_a_hardened_job_not_a_service(stack: dict[str, Any]) -> None:
    job = stack["x-keel-migrate"]
    assert "migrate" not in stack["services"]
    assert "credentials" not in stack["services"]
    assert job["command"] == ["migrate"]
    assert job["read_only"] is True
    assert job["cap_drop"] == ["ALL"]
    assert tmpfs_mounts(job) == {"/tmp": parse_size("64m", "migrate")}
    assert {s["source"] for s in job["secrets"]} == {"age_key", "app_secrets"}


def test_gpu_worker_goes_to_gpu_nodes_without_device_reservations(root: Path) -> None:
    rendered = render(inputs(root, GPU="1"))
    gpu = rendered.stack["services"]["worker-gpu"]
    assert gpu["deploy"]["placement"]["constraints"] == ["node.labels.keel.gpu == true"]
    assert "reservations" not in gpu["deploy"].get("resources", {})
    assert gpu["environment"]["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert any("GPU device reservations" in note for note in rendered.notes)


@pytest.mark.skipif(
    not STACK_CLI.exists(), reason="needs docker CLI >= 23 at /usr/local/bin/docker (stack config)"
)
@pytest.mark.parametrize(("env", "gpu"), [("prod", False), ("prod", True), ("test", False)])
def test_docker_stack_config_accepts_the_file(tmp_path: Path, env: str, gpu: bool) -> None:
    from keel.stack.commands import write_stack

    root = make_root(tmp_path, env)
    stack_inputs = inputs(root, env, **({"GPU": "1"} if gpu else {}))
    output = tmp_path / "stack.yaml"
    write_stack(render(stack_inputs), stack_inputs, output)
    result = subprocess.run(
        [str(STACK_CLI), "stack", "config", "-c", str(output)],
        capture_output=True,
        text=True,
        check=False,
        env={"DOCKER_HOST": "unix:///nonexistent.sock", "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Ignoring unsupported options" not in result.stderr
    merged = yaml.safe_load(result.stdout)
    assert set(merged["services"]) >= {"api", "worker", "postgres", "redis"}
    # The redis entrypoint's $(...) survives the second interpolation by stack deploy.
    assert "$(cat /run/keel-credentials/redis_password)" in str(merged["services"]["redis"])


def test_dollars_are_escaped_for_stack_deploy() -> None:
    assert escape_dollars({"a": ["$(x)", "$$y"]}) == {"a": ["$$(x)", "$$$$y"]}


def test_interpolation_rules() -> None:
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${NONE-d} $$ $SET", env, "f") == (
        "v d  d $ v"
    )
    with pytest.raises(StackError, match=r"f: \$\{NONE\} is required: give it"):
        interpolate("${NONE:?give it}", env, "f")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["stack", "render", "staging"], "ENV='staging': use one of dev, test, prod"),
        (
            ["stack", "render", "prod", "--credentials-dir", "creds"],
            "the prod age key",
        ),
    ],
)
def test_bad_input_is_one_clear_line(
    root: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("KEEL_AGE_KEY_FILE", str(root / "no-such.agekey"))
    code = main([*argv, "--root", str(root)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_missing_secrets_file_names_it(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_AGE_KEY_FILE", str(root / "age.key"))
    (root / "secrets" / "prod.yaml").unlink()
    code = main(
        ["stack", "render", "prod", "--root", str(root), "--credentials-dir", str(root / "creds")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "secrets/prod.yaml: cannot read" in err
