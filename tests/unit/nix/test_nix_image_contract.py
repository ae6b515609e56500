"""The Nix image and the Containerfile image honour one contract.

nix/image.nix is evaluated (through the flake's outputs, against nix/tests/stub.nix) to the
exact config it hands dockerTools; the Containerfile's final stage is read the way Docker
records it. Both must give: user 10001:10001, entrypoint `keel`, command `serve`, port 8000,
healthcheck `keel healthcheck api` with the same timings, the same app-facing environment,
working directory, log volume and OCI label keys.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

import pytest
from nix_containerfile import ImageConfig, parse
from nix_support import NIX_DIR, ROOT, nix_eval, nix_settings

CONTAINERFILE = ROOT / "Containerfile"
SETTINGS = nix_settings()
VARIANTS = [f"{system}/{variant}" for system in SETTINGS["systems"] for variant in ("cpu", "gpu")]
NS = 1_000_000_000

# Set by design to different values in the two images: PATH (the Nix venv lives in the store),
# KEEL_REVISION (the flake revision vs the REVISION build arg).
ENV_ALLOWED_TO_DIFFER = {"PATH", "KEEL_REVISION"}
# Label values that depend on the build (flake revision vs build arg), compared by key only.
LABELS_BY_KEY_ONLY = {
    "org.opencontainers.image.revision",
    "org.opencontainers.image.created",
    "org.opencontainers.image.title",
    "org.opencontainers.image.description",
}


@pytest.fixture(scope="module")
def nix_images() -> dict[str, Any]:
    images: dict[str, Any] = nix_eval(file=NIX_DIR / "tests" / "image-policy.nix", attr="images")
    return images


@pytest.fixture(scope="module")
def containerfile() -> ImageConfig:
    # Both images are part of the repo now: a missing Containerfile fails, it is not skipped.
    return parse(CONTAINERFILE.read_text())


def exe_names(argv: list[str]) -> list[str]:
    """argv with the program reduced to its name (/nix/store/...-keel-env/bin/keel -> keel)."""
    return [posixpath.basename(argv[0]), *argv[1:]] if argv else []


def env_dict(env: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in env)


def uid_gid(user: str) -> tuple[str, str]:
    uid, _, gid = user.partition(":")
    return uid, gid or uid


@pytest.mark.parametrize("variant", VARIANTS)
def test_user_entrypoint_cmd_port(
    variant: str, nix_images: dict[str, Any], containerfile: ImageConfig
) -> None:
    nix = nix_images[variant]["config"]
    assert containerfile.user is not None, "Containerfile sets no USER"
    assert uid_gid(nix["User"]) == uid_gid(containerfile.user) == ("10001", "10001")
    assert exe_names(nix["Entrypoint"]) == exe_names(containerfile.entrypoint) == ["keel"]
    assert nix["Cmd"] == containerfile.cmd == ["serve"]
    assert set(nix["ExposedPorts"]) == containerfile.exposed_ports == {"8000/tcp"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_healthcheck(variant: str, nix_images: dict[str, Any], containerfile: ImageConfig) -> None:
    nix = nix_images[variant]["config"]["Healthcheck"]
    theirs = containerfile.healthcheck
    assert theirs is not None, "Containerfile has no HEALTHCHECK"
    assert theirs.test[0] == "CMD", (
        f"Containerfile HEALTHCHECK is shell form {theirs.test!r}; use exec form "
        '(CMD ["keel", "healthcheck", "api"]): the Nix image has no shell'
    )
    expected = ["CMD", "keel", "healthcheck", "api"]
    assert ["CMD", *exe_names(nix["Test"][1:])] == ["CMD", *exe_names(theirs.test[1:])] == expected
    timings = {
        "interval": (nix["Interval"] / NS, theirs.interval_s),
        "timeout": (nix["Timeout"] / NS, theirs.timeout_s),
        "start period": (nix["StartPeriod"] / NS, theirs.start_period_s),
        "retries": (nix["Retries"], theirs.retries),
    }
    differ = {name: pair for name, pair in timings.items() if pair[0] != pair[1]}
    assert not differ, f"healthcheck (nix/image.nix, Containerfile) differ: {differ}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_environment_workdir_volumes(
    variant: str, nix_images: dict[str, Any], containerfile: ImageConfig
) -> None:
    nix = nix_images[variant]["config"]
    env = env_dict(nix["Env"])
    differ = {
        key: (env.get(key), value)
        for key, value in containerfile.env.items()
        if key not in ENV_ALLOWED_TO_DIFFER and env.get(key) != value
    }
    assert not differ, f"env (nix/image.nix, Containerfile) differ: {differ}"
    assert nix["WorkingDir"] == containerfile.workdir
    assert set(nix.get("Volumes", {})) == containerfile.volumes


@pytest.mark.parametrize("variant", VARIANTS)
def test_labels(variant: str, nix_images: dict[str, Any], containerfile: ImageConfig) -> None:
    labels: dict[str, str] = nix_images[variant]["config"]["Labels"]
    missing = sorted(set(containerfile.labels) - set(labels))
    assert not missing, f"nix/image.nix lacks the Containerfile's labels {missing}"
    differ = {
        key: (labels[key], value)
        for key, value in containerfile.labels.items()
        if key not in LABELS_BY_KEY_ONLY and labels[key] != value
    }
    assert not differ, f"labels (nix/image.nix, Containerfile) differ: {differ}"


def test_gpu_variant_differs_only_by_nvidia_env(nix_images: dict[str, Any]) -> None:
    for system in SETTINGS["systems"]:
        cpu = nix_images[f"{system}/cpu"]
        gpu = nix_images[f"{system}/gpu"]
        extra = env_dict(gpu["config"]["Env"]).keys() - env_dict(cpu["config"]["Env"]).keys()
        assert extra == {"NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "LD_LIBRARY_PATH"}
        same = ("User", "Entrypoint", "Cmd", "ExposedPorts", "Healthcheck", "WorkingDir")
        assert all(cpu["config"][key] == gpu["config"][key] for key in same)
        assert (cpu["name"], cpu["tag"]) == (SETTINGS["image"]["name"], SETTINGS["image"]["tag"])
        assert (gpu["name"], gpu["tag"]) == (SETTINGS["image"]["name"], SETTINGS["image"]["gpuTag"])


def test_compose_default_image_is_the_nix_image() -> None:
    """`nix build .#image && docker load < result` then `docker compose up` uses that image."""
    compose = ROOT / "compose.yaml"
    defaults = set(re.findall(r"\$\{KEEL_IMAGE:-([^}]+)\}", compose.read_text()))
    expected = f"{SETTINGS['image']['name']}:{SETTINGS['image']['tag']}"
    assert defaults == {expected}, (
        f"compose.yaml KEEL_IMAGE defaults {sorted(defaults)} differ from the Nix image "
        f"{expected} (nix/config.json)"
    )
