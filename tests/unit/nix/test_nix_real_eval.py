"""Assertions on the flake evaluated with its real locked inputs (nix/check-real-inputs.sh).

That script evaluates every output with the real uv2nix, pyproject.nix, build-system-pkgs and
nixpkgs lib (builders stubbed) and leaves JSON results in KEEL_NIX_EVAL_RESULTS; `make
check-nix` runs it and then this module. What is asserted is what a user of `nix build` relies
on: every output evaluates for both systems, the venv holds exactly the runtime dependencies of
uv.lock, the image configs keep the contract, and a commit outside the keel package leaves the
venv and the image layers alone.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from nix_support import Target, lock_packages, nix_settings, runtime_closure

SYSTEMS = ("x86_64-linux", "aarch64-linux")
PACKAGES = ("default", "venv", "image", "image-gpu")
REVISION_LABEL = "org.opencontainers.image.revision"


@pytest.fixture(scope="module")
def results() -> Path:
    where = os.environ.get("KEEL_NIX_EVAL_RESULTS")
    if not where:
        pytest.skip(
            "needs the real-input evaluation: run `make check-nix` (nix/check-real-inputs.sh)"
        )
    return Path(where)


def load(results: Path, name: str) -> Any:
    path = results / "out" / f"{name}.json"
    log = results / "out" / f"{name}.log"
    assert path.is_file(), f"nix produced no {path.name}; its log:\n{log.read_text()}"
    assert path.stat().st_size, f"nix printed nothing for {path.name}; its log:\n{log.read_text()}"
    return json.loads(path.read_text())


STUB_PYTHONS = json.loads(
    (Path(__file__).resolve().parents[3] / "nix/tests/real-inputs/python-versions.json").read_text()
)


def target(system: str) -> Target:
    """The platform as the stand-in nixpkgs describes it (its interpreter's full version)."""
    settings = nix_settings()
    major, minor = (int(part) for part in settings["glibc"].split("."))
    patch = int(STUB_PYTHONS[settings["python"]].split(".")[2])
    return Target(
        python=settings["python"], arch=system.split("-", 1)[0], glibc=(major, minor), patch=patch
    )


def test_every_package_of_both_systems_evaluates_to_a_derivation(results: Path) -> None:
    packages = load(results, "packages-base")
    assert set(packages) == set(SYSTEMS)
    for system in SYSTEMS:
        drvs = packages[system]["drvPaths"]
        assert set(drvs) == set(PACKAGES), system
        for name, drv in drvs.items():
            assert re.fullmatch(r"/nix/store/[0-9a-z]{32}-[^/]+\.drv", drv), (system, name, drv)
        assert drvs["default"] == drvs["venv"]
    # The two systems are different builds.
    assert packages[SYSTEMS[0]]["drvPaths"]["venv"] != packages[SYSTEMS[1]]["drvPaths"]["venv"]


def test_apps_dev_shells_and_checks_evaluate(results: Path) -> None:
    apps = load(results, "apps")
    for system in SYSTEMS:
        assert set(apps[system]) == {"serve", "worker", "migrate"}
        for verb, app in apps[system].items():
            assert app["type"] == "app"
            assert app["program"].startswith("/nix/store/")
            assert app["program"].endswith(f"keel-{verb}")
    shells = load(results, "devShells")
    checks = load(results, "checks")
    for system in SYSTEMS:
        assert shells[system]["default"].endswith("-keel-dev.drv")
        assert {"image-policy", "wheels-only", "venv-smoke", "unit-tests"} <= set(checks[system])


def test_the_unit_test_check_gets_the_declared_tools(results: Path) -> None:
    names = load(results, "unit-test-tools")
    for system in SYSTEMS:
        assert names[system][0] == "keel-dev-env"
        wanted = set(nix_settings()["unitTestTools"].values())
        assert wanted <= set(names[system][1:]), names[system]


def test_nix_flake_check_passes_for_both_systems(results: Path) -> None:
    rc = (results / "out" / "flake-check.rc").read_text().strip()
    assert rc == "0", (results / "out" / "flake-check.log").read_text()[-4000:]


@pytest.mark.parametrize("system", SYSTEMS)
def test_venv_holds_exactly_the_runtime_dependencies_of_uv_lock(results: Path, system: str) -> None:
    deps = load(results, "packages-base")[system]["venvDeps"].split(":")
    installed = {}
    for path in deps:
        match = re.fullmatch(r"/nix/store/[0-9a-z]{32}-(.+)-([^-]+)", path)
        assert match, path
        installed[match.group(1)] = match.group(2)
    packages = lock_packages()
    expected = runtime_closure("keel", target(system))
    normalise = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
    assert {normalise(name) for name in installed} == {normalise(name) for name in expected}
    for name, version in installed.items():
        assert packages[normalise(name)]["version"] == version, name


@pytest.mark.parametrize("system", SYSTEMS)
def test_image_configs_keep_the_contract(results: Path, system: str) -> None:
    packages = load(results, "packages-base")[system]
    for key, gpu in (("imageConfig", False), ("imageGpuConfig", True)):
        config = packages[key]
        assert config["User"] == "10001:10001"
        assert config["Cmd"] == ["serve"]
        assert config["Entrypoint"][0].endswith("-keel-env/bin/keel")
        assert config["Healthcheck"]["Test"][2:] == ["healthcheck", "api"]
        nvidia = [env for env in config["Env"] if env.startswith("NVIDIA_VISIBLE_DEVICES=")]
        assert bool(nvidia) is gpu, key


def test_a_commit_outside_the_package_keeps_the_venv_and_the_image_layers(results: Path) -> None:
    base = load(results, "packages-base")
    docs = load(results, "packages-docs")
    for system in SYSTEMS:
        assert docs[system]["drvPaths"]["venv"] == base[system]["drvPaths"]["venv"], system
        assert docs[system]["imageContents"] == base[system]["imageContents"], system
        # Nothing but the revision label may differ in the image config. (Here both say "dirty":
        # Nix drops self.rev when --override-input changes the lock; on a Nix host the label
        # names each commit.)
        before, after = base[system]["imageConfig"], docs[system]["imageConfig"]
        for config in (before, after):
            revision = config["Labels"].pop(REVISION_LABEL)
            assert re.fullmatch(r"[0-9a-f]{40}|dirty", revision)
            # The same value reaches the app as KEEL_REVISION (the build-info metric).
            config["Env"].remove(f"KEEL_REVISION={revision}")
        assert before == after, system


def test_a_commit_inside_the_package_changes_the_venv(results: Path) -> None:
    base = load(results, "packages-base")
    code = load(results, "packages-code")
    for system in SYSTEMS:
        assert code[system]["drvPaths"]["venv"] != base[system]["drvPaths"]["venv"], system
