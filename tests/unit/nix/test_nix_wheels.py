"""uv.lock against the flake: every runtime dependency installs from a manylinux wheel.

uv2nix prefers wheels; a runtime dependency without a wheel for the flake's Python on x86_64 or
aarch64 would be compiled from source on the Nix host, which needs build systems uv.lock does not
record. Such packages must be declared in nix/config.json ("sdistBuildSystems"), which
nix/overrides.nix turns into build inputs.
"""

from __future__ import annotations

import tomllib

import pytest
from nix_support import (
    ROOT,
    Target,
    compatible_wheels,
    lock_packages,
    nix_settings,
    runtime_closure,
    uv_lock,
)
from packaging.specifiers import SpecifierSet
from packaging.version import Version

SETTINGS = nix_settings()
PYTHON: str = SETTINGS["python"]
GLIBC = tuple(int(part) for part in SETTINGS["glibc"].split("."))
SDIST_ONLY: dict[str, list[str]] = SETTINGS["sdistBuildSystems"]
ARCHES = ["x86_64", "aarch64"]


def target(arch: str) -> Target:
    assert len(GLIBC) == 2
    return Target(python=PYTHON, arch=arch, glibc=(GLIBC[0], GLIBC[1]))


@pytest.mark.parametrize("arch", ARCHES)
def test_every_runtime_dependency_has_a_manylinux_wheel(arch: str) -> None:
    tgt = target(arch)
    tags = tgt.tags()
    packages = lock_packages()
    missing = sorted(
        name
        for name in runtime_closure("keel", tgt) - {"keel"}
        if name not in SDIST_ONLY and not compatible_wheels(packages[name], tags)
    )
    assert not missing, (
        f"no manylinux wheel for CPython {PYTHON} on {arch} (glibc {SETTINGS['glibc']}) in "
        f"uv.lock: {', '.join(missing)}. The Nix build would compile them from source. Pick "
        "versions that ship wheels, or declare their build systems under sdistBuildSystems "
        "in nix/config.json."
    )


@pytest.mark.parametrize("arch", ARCHES)
def test_dev_group_installs_from_wheels_too(arch: str) -> None:
    """checks.unit-tests runs in a venv with the dev group (workspace.deps.all)."""
    tgt = target(arch)
    packages = lock_packages()
    closure = runtime_closure("keel", tgt, groups=["dev"])
    assert {"pytest", "mypy", "packaging"} <= closure
    missing = sorted(
        name
        for name in closure - {"keel"}
        if name not in SDIST_ONLY and not compatible_wheels(packages[name], tgt.tags())
    )
    assert not missing, (
        f"dev group packages without a wheel for CPython {PYTHON} on {arch}: {missing}"
    )


@pytest.mark.parametrize("arch", ARCHES)
def test_declared_sdist_only_packages_are_real_and_still_needed(arch: str) -> None:
    tgt = target(arch)
    closure = runtime_closure("keel", tgt)
    packages = lock_packages()
    for name, build_systems in SDIST_ONLY.items():
        assert name in closure, (
            f"nix/config.json sdistBuildSystems names {name!r}, which is not a runtime "
            "dependency in uv.lock any more: remove it"
        )
        assert packages[name].get("sdist"), f"uv.lock has no sdist for {name!r}"
        assert not compatible_wheels(packages[name], tgt.tags()), (
            f"{name} now has a wheel for CPython {PYTHON} on {arch}: remove it from "
            "sdistBuildSystems in nix/config.json"
        )
        assert build_systems, f"sdistBuildSystems[{name!r}] lists no build systems"


def test_closure_follows_extras_and_leaves_out_the_dev_group() -> None:
    closure = runtime_closure("keel", target("x86_64"))
    # granian[uvloop] and python-jose[cryptography] pull their extras in.
    assert {"granian", "uvloop", "python-jose", "cryptography"} <= closure
    dev_only = {"pytest", "mypy", "ruff", "pytest-docker"}
    assert not closure & dev_only, (
        f"dev group leaked into the runtime closure: {closure & dev_only}"
    )
    # Windows-only markers are evaluated away.
    assert "colorama" not in closure


def test_manylinux_tags_follow_glibc() -> None:
    platforms = Target(python="3.12", arch="aarch64", glibc=(2, 28)).manylinux_platforms()
    assert platforms[0] == "manylinux_2_28_aarch64"
    assert "manylinux2014_aarch64" in platforms
    assert "manylinux_2_29_aarch64" not in platforms
    assert not any(p.startswith("manylinux1") for p in platforms)
    x86 = Target(python="3.12", arch="x86_64", glibc=(2, 17)).manylinux_platforms()
    assert {"manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64"} <= set(x86)


def test_requires_python_admits_the_flake_python() -> None:
    version = Version(f"{PYTHON}.0")
    lock_spec = SpecifierSet(uv_lock()["requires-python"])
    assert version in lock_spec, (
        f"uv.lock requires-python {lock_spec} excludes the flake's {PYTHON}"
    )
    with (ROOT / "pyproject.toml").open("rb") as fh:
        project_spec = SpecifierSet(tomllib.load(fh)["project"]["requires-python"])
    assert version in project_spec, (
        f"pyproject.toml requires-python {project_spec} excludes the flake's Python {PYTHON} "
        "(nix/config.json)"
    )
