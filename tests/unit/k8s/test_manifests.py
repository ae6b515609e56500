"""The Kubernetes manifests, validated offline (no cluster can run here): every overlay renders
with kustomize, passes the strict JSON schemas of the oldest and newest supported Kubernetes,
and keeps the invariants a reviewer would check by hand."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from k8s_render import (
    K8S,
    NEWEST,
    OLDEST,
    OVERLAYS,
    REPO,
    containers,
    image_tag,
    is_keel,
    key,
    overlay_settings,
    pod_objects,
    pod_spec,
    render,
    render_dir,
)
from litestar.handlers import HTTPRouteHandler

from keel.cli import build_parser
from keel.config.fields import field_specs
from keel.health import HealthController

KEEL_UID = 10001


def test_every_overlay_is_tested() -> None:
    assert set(OVERLAYS) >= {"dev", "prod", "prod-gpu"}, OVERLAYS


# --- schemas -----------------------------------------------------------------------------------


def _schema_errors(docs: list[dict[str, Any]], version: str) -> list[str]:
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path)
            errors.append(f"{key(doc)}: {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            # Not a warning here: a kind without a schema is a kind nobody checked.
            errors.append(f"{key(doc)}: {exc.message}")
    return errors


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_strictly(overlay: str, version: str) -> None:
    assert _schema_errors(render(overlay), version) == []


def test_strict_validation_rejects_an_unknown_field() -> None:
    docs = render("prod")
    api = next(d for d in docs if key(d) == "Deployment/keel-api")
    pod_spec(api)["containers"][0]["livenesProbe"] = {"httpGet": {"path": "/", "port": 80}}
    assert any("livenesProbe" in error for error in _schema_errors([api], OLDEST))


def test_schemas_before_the_floor_reject_the_prestop_sleep() -> None:
    # preStop `sleep` is alpha (off) in 1.29: an older cluster would silently drop it.
    docs = render("prod")
    assert any("sleep" in error for error in _schema_errors(docs, "1.28"))


# --- probes ------------------------------------------------------------------------------------


def _health_paths() -> set[str]:
    """The routes the app's health controller really serves."""
    handlers = [v for v in vars(HealthController).values() if isinstance(v, HTTPRouteHandler)]
    return {f"{HealthController.path}{path}" for handler in handlers for path in handler.paths}


def _probe_target(probe: dict[str, Any]) -> str:
    if "httpGet" in probe:
        return str(probe["httpGet"]["path"])
    return " ".join(probe["exec"]["command"])


def _app_containers(overlay: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    docs = render(overlay)
    return [
        (key(doc), doc, container)
        for doc in pod_objects(docs)
        if doc["kind"] == "Deployment"
        for container in pod_spec(doc)["containers"]
        if is_keel(container)
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_long_running_container_has_three_probes(overlay: str) -> None:
    for name, _, container in _app_containers(overlay):
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert probe in container, f"{overlay} {name}: no {probe}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_liveness_never_depends_on_postgres_or_redis(overlay: str) -> None:
    paths = _health_paths()
    assert {"/health/live", "/health/ready"} <= paths
    for name, _, container in _app_containers(overlay):
        for probe in ("livenessProbe", "startupProbe"):
            target = _probe_target(container[probe])
            # /health/ready checks the database, Redis and migrations; the plain worker check
            # reads a heartbeat from Redis. Either would restart every pod in an outage.
            assert target != "/health/ready", f"{overlay} {name}: {probe} on readiness"
            if target.startswith("keel healthcheck worker"):
                assert "--live" in target.split(), f"{overlay} {name}: {probe} {target}"
            else:
                assert target == "/health/live", f"{overlay} {name}: {probe} {target}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_use_the_apps_real_endpoints_and_commands(overlay: str) -> None:
    settings = overlay_settings(render(overlay))
    paths = _health_paths()
    for name, _, container in _app_containers(overlay):
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            spec = container[probe]
            if "httpGet" in spec:
                assert spec["httpGet"]["path"] in paths, f"{name}: {spec}"
                assert ports[spec["httpGet"]["port"]] == settings.http.port, f"{name}: port"
            else:
                command = spec["exec"]["command"]
                assert command[0] == "keel", f"{name}: {command}"
                # The CLI the image runs accepts exactly this command line.
                args = build_parser(command[1:]).parse_args(command[1:])
                assert args.command == "healthcheck", command
        if container["args"][0] == "serve":
            assert _probe_target(container["readinessProbe"]) == "/health/ready", name
        else:
            assert _probe_target(container["readinessProbe"]) == "keel healthcheck worker", name


# --- security ----------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_hardened(overlay: str) -> None:
    for doc in pod_objects(render(overlay)):
        name, spec = key(doc), pod_spec(doc)
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, name
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name
        # Service links would inject REDIS_PORT=tcp://... next to a Service named redis.
        assert spec.get("enableServiceLinks") is False, name
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(host), f"{name}: {host}"
        for container in containers(spec):
            where = f"{name}/{container['name']}"
            sc = container.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("privileged", False) is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keel_runs_as_10001_and_writes_only_to_tmp_and_logs(overlay: str) -> None:
    for doc in pod_objects(render(overlay)):
        spec = pod_spec(doc)
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in containers(spec):
            if not is_keel(container):
                continue
            where = f"{key(doc)}/{container['name']}"
            sc = {**spec["securityContext"], **container["securityContext"]}
            assert sc["runAsUser"] == KEEL_UID, where
            if container["name"] == "credentials":
                continue  # dev only: writes the DB/Redis password for postgres's group (999)
            assert sc["runAsGroup"] == KEEL_UID, where
            writable = {
                m["mountPath"]
                for m in container["volumeMounts"]
                if not m.get("readOnly") and "emptyDir" in volumes[m["name"]]
            }
            assert writable == {"/tmp", "/var/log/keel"}, where
            for mount in container["volumeMounts"]:
                if "emptyDir" not in volumes[mount["name"]]:
                    assert mount.get("readOnly") is True, f"{where}: {mount}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_namespace_enforces_restricted_pod_security(overlay: str) -> None:
    docs = render(overlay)
    namespaces = [d for d in docs if d["kind"] == "Namespace"]
    assert len(namespaces) == 1
    labels = namespaces[0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    name = namespaces[0]["metadata"]["name"]
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == name, key(doc)


# --- secrets -----------------------------------------------------------------------------------


def _secret_setting_names() -> set[str]:
    return {name for name, spec in field_specs().items() if spec.secret}


def _test_secret_values() -> set[str]:
    """The decrypted values of the committed test env's SOPS file (a real SOPS file)."""
    from keel.config import load

    settings = load(
        "test",
        root=REPO,
        environ={"SOPS_AGE_KEY_FILE": str(REPO / "secrets" / "keys" / "test.agekey")},
    )
    values = {value for value in settings.secret_values if len(value) >= 8}
    assert len(values) >= 3, "secrets/test.yaml decrypted to fewer values than it holds"
    return values


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_value_in_any_manifest(overlay: str) -> None:
    docs = render(overlay)
    text = yaml.safe_dump_all(docs)
    assert [key(d) for d in docs if d["kind"] == "Secret"] == []
    assert "AGE-SECRET-KEY-" not in text
    leaked = [value for value in _test_secret_values() if value in text]
    assert leaked == [], "a value of secrets/test.yaml is in the render"
    secret_names = _secret_setting_names()
    assert secret_names >= {"DB_PASSWORD", "REDIS_PASSWORD", "JWT_SECRET_KEY"}
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            assert not set(doc.get("data", {})) & secret_names, key(doc)
    for doc in pod_objects(docs):
        for container in containers(pod_spec(doc)):
            for env in container.get("env", []):
                # Secret settings reach Keel only as files (SOPS file, or NAME_FILE paths).
                assert env["name"] not in secret_names, f"{key(doc)}: env {env['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_files_from_the_documented_secrets(overlay: str) -> None:
    docs = render(overlay)
    settings = overlay_settings(docs)
    doc_text = (REPO / "docs" / "kubernetes.md").read_text(encoding="utf-8")
    for doc in pod_objects(docs):
        spec = pod_spec(doc)
        secret_volumes = {
            v["name"]: v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v
        }
        namespace = doc["metadata"]["namespace"]
        for name in secret_volumes.values():
            # The exact command docs/kubernetes.md gives the operator, for this namespace.
            command = f"kubectl -n {namespace} create secret generic {name} --from-file="
            assert command in doc_text, command
        for container in containers(spec):
            if not is_keel(container):
                continue
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            key_file = Path(env["SOPS_AGE_KEY_FILE"])
            assert secret_volumes[mounts[str(key_file.parent)]] == "keel-age-key"
            # The encrypted settings where the loader looks: $KEEL_ROOT/secrets/<env>.yaml.
            assert secret_volumes[mounts["/app/secrets"]] == "keel-sops"
            env_file = f"{settings.app.env}.yaml"
            assert f"--from-file={env_file}=secrets/{env_file}" in doc_text, env_file


# --- resources, images, release ----------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(overlay: str) -> None:
    for doc in pod_objects(render(overlay)):
        for container in containers(pod_spec(doc)):
            resources = container.get("resources", {})
            where = f"{key(doc)}/{container['name']}"
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
            assert {"cpu", "memory"} <= set(resources.get("limits", {})), where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_pinned_release_and_a_migration_job_named_after_it(overlay: str) -> None:
    docs = render(overlay)
    tags = set()
    for doc in pod_objects(docs):
        for container in containers(pod_spec(doc)):
            tag = image_tag(container["image"])
            assert tag, f"{key(doc)}: {container['image']} has no tag"
            assert tag != "latest", f"{key(doc)}: {container['image']}"
            if is_keel(container) and "gpu" not in container["args"]:
                tags.add(tag)
    assert len(tags) == 1, tags
    jobs = [d for d in docs if d["kind"] == "Job"]
    assert [j["metadata"]["name"] for j in jobs] == [f"keel-migrate-{tags.pop()}"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", jobs[0]["metadata"]["name"])
    assert len(jobs[0]["metadata"]["name"]) <= 63
    job_spec = pod_spec(jobs[0])
    assert job_spec["containers"][0]["args"] == ["migrate"]
    assert job_spec["restartPolicy"] == "Never"
    assert jobs[0]["spec"]["parallelism"] == 1


def test_the_job_name_check_catches_a_registry_with_a_port(tmp_path: Path) -> None:
    overlay = tmp_path / "ported"
    shutil.copytree(K8S / "overlays" / "prod", overlay)
    manifest = overlay / "kustomization.yaml"
    text = manifest.read_text(encoding="utf-8")
    text = text.replace("registry.example.com/keel", "registry.example.com:5000/keel")
    manifest.write_text(
        text.replace("../../base", os.path.relpath(K8S / "base", overlay)), encoding="utf-8"
    )
    job = next(d for d in render_dir(overlay) if d["kind"] == "Job")
    # What test_one_pinned_release_... refuses: the tag is not the Job name's last part.
    assert job["metadata"]["name"] != "keel-migrate-0.1.0"
    assert not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", job["metadata"]["name"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keel_containers_run_commands_the_cli_accepts(overlay: str) -> None:
    seen = set()
    for doc in pod_objects(render(overlay)):
        for container in containers(pod_spec(doc)):
            if not is_keel(container):
                continue
            assert "command" not in container, f"{key(doc)}: the image's entrypoint is `keel`"
            args = container["args"]
            parsed = build_parser(args).parse_args(args)  # exits (fails) on a bad command line
            assert getattr(parsed, "handler", None) is not None, args
            seen.add(parsed.command)
    assert {"serve", "worker", "migrate"} <= seen, seen
