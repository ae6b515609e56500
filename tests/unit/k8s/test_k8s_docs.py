"""docs/kubernetes.md's commands, run as far as they run without a cluster: the Secret commands
(kubectl `--dry-run=client`) must build exactly the Secrets the rendered pods mount, and every
`kubectl apply -k` / `make k8s-render` names an overlay that renders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from k8s_render import (
    K8S,
    NEWEST,
    OVERLAYS,
    REPO,
    containers,
    is_keel,
    kubectl,
    pod_objects,
    pod_spec,
    render,
)

DOC = REPO / "docs" / "kubernetes.md"


def _doc_lines() -> list[str]:
    return [line.strip() for line in DOC.read_text(encoding="utf-8").splitlines()]


def _secret_commands(namespace: str) -> list[str]:
    prefix = f"kubectl -n {namespace} create secret generic "
    return [line for line in _doc_lines() if line.startswith(prefix) and "|" not in line]


def _run_dry(command: str, home: Path) -> dict[str, Any]:
    """The doc's command with `--dry-run=client -o yaml`: kubectl builds the Secret, no cluster."""
    env = {**os.environ, "HOME": str(home), "PATH": f"{kubectl().parent}:{os.environ['PATH']}"}
    env.pop("KUBECONFIG", None)
    result = subprocess.run(
        ["bash", "-c", f"{command} --dry-run=client -o yaml"],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, f"{command}: {result.stderr}"
    secret: dict[str, Any] = yaml.safe_load(result.stdout)
    return secret


def _operator_files(home: Path, app_env: str) -> None:
    """What `make secrets-init ENV=...` leaves: the key outside the repo, the encrypted file."""
    keys = home / ".config" / "keel" / "keys"
    keys.mkdir(parents=True)
    shutil.copy(REPO / "secrets" / "keys" / "test.agekey", keys / f"{app_env}.agekey")
    (home / "secrets").mkdir()
    shutil.copy(REPO / "secrets" / "test.yaml", home / "secrets" / f"{app_env}.yaml")


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_documented_secret_commands_build_what_the_pods_mount(overlay: str, tmp_path: Path) -> None:
    docs = render(overlay)
    namespace = next(d for d in docs if d["kind"] == "Namespace")["metadata"]["name"]
    app_env = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["APP_ENV"]
    _operator_files(tmp_path, app_env)
    commands = _secret_commands(namespace)
    assert len(commands) == 2, commands
    secrets = {}
    for command in commands:
        secret = _run_dry(command, tmp_path)
        kubernetes_validate.validate(secret, NEWEST, strict=True)
        assert secret["metadata"]["namespace"] == namespace
        secrets[secret["metadata"]["name"]] = set(secret["data"])
    checked = 0
    for doc in pod_objects(docs):
        spec = pod_spec(doc)
        volumes = {v["name"]: v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
        for container in containers(spec):
            if not is_keel(container):
                continue
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            key_file = Path(
                next(e["value"] for e in container["env"] if e["name"] == "SOPS_AGE_KEY_FILE")
            )
            # The file the app opens is a key of the Secret mounted at its directory.
            assert key_file.name in secrets[volumes[mounts[str(key_file.parent)]]]
            assert f"{app_env}.yaml" in secrets[volumes[mounts["/app/secrets"]]]
            checked += 1
    assert checked >= 3  # api, worker, migrate (and dev's credentials init containers)


def test_every_documented_overlay_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"deploy/k8s/overlays/([a-z0-9-]+)", text))
    named |= set(re.findall(r"OVERLAY=([a-z0-9-]+)", text))
    assert named, "docs/kubernetes.md names no overlay"
    assert named <= set(OVERLAYS), named - set(OVERLAYS)
    assert (K8S / "overlays" / "prod" / "settings.env").is_file()


def test_documented_waits_name_the_rendered_objects() -> None:
    docs = {f"{d['kind'].lower()}/{d['metadata']['name']}" for d in render("prod")}
    waits = [line for line in _doc_lines() if line.startswith("kubectl -n keel-prod ")]
    for line in waits:
        for ref in re.findall(r"\b(job|deployment)/([a-z0-9.-]+)", line):
            name = f"{ref[0]}/{ref[1]}"
            if ref[0] == "job":
                # The doc's example release; the render's Job carries the overlay's tag.
                assert re.fullmatch(r"job/keel-migrate-[0-9.]+", name), name
                assert any(d.startswith("job/keel-migrate-") for d in docs)
            else:
                assert name in docs, name
