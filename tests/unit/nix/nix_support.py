"""Helpers for the Nix flake tests: repo paths, nix-instantiate, uv.lock closures, wheel tags."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

ROOT = Path(__file__).resolve().parents[3]
NIX_DIR = ROOT / "nix"

# Nix 2.8 (Debian's nix-bin) retries the unreachable binary cache before every command unless
# substituters are switched off.
NIX_CONFIG = "experimental-features = nix-command flakes\nsubstituters ="


def nix_settings() -> dict[str, Any]:
    """nix/config.json: the flake's Python, glibc, systems, image name/tags, sdist build systems."""
    data: dict[str, Any] = json.loads((NIX_DIR / "config.json").read_text())
    return data


def nix_instantiate() -> str:
    exe = shutil.which("nix-instantiate")
    if exe is None:
        pytest.skip("needs nix-instantiate (Debian: apt-get install -y nix-bin; CI installs it)")
    return exe


def nix_eval(*, file: Path | None = None, expr: str | None = None, attr: str | None = None) -> Any:
    """Evaluate a Nix file (optionally one attribute) or expression strictly to JSON."""
    cmd = [nix_instantiate(), "--eval", "--strict", "--json"]
    if expr is not None:
        cmd += ["-E", expr]
    elif file is not None:
        cmd.append(str(file))
    if attr is not None:
        cmd += ["-A", attr]
    env = {**os.environ, "NIX_CONFIG": NIX_CONFIG}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stderr.strip()}")
    return json.loads(proc.stdout)


# --- uv.lock -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One platform the flake builds for."""

    python: str  # "3.11"
    arch: str  # "x86_64" / "aarch64"
    glibc: tuple[int, int]
    patch: int = 0  # the interpreter's patch level (python_full_version markers)

    @property
    def environment(self) -> dict[str, str]:
        """PEP 508 marker environment of CPython on Linux/glibc for this target."""
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{self.python}.{self.patch}",
            "os_name": "posix",
            "platform_machine": self.arch,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": f"{self.python}.{self.patch}",
            "python_version": self.python,
            "sys_platform": "linux",
            "extra": "",
        }

    def manylinux_platforms(self) -> list[str]:
        """manylinux platform tags a glibc of this version accepts, most specific first."""
        major, minor = self.glibc
        oldest = 5 if self.arch == "x86_64" else 17  # aarch64 wheels start at manylinux2014
        platforms = [f"manylinux_{major}_{m}_{self.arch}" for m in range(minor, oldest - 1, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        platforms += [
            f"{alias}_{self.arch}"
            for glibc_minor, alias in legacy.items()
            if oldest <= glibc_minor <= minor
        ]
        return platforms

    def tags(self) -> set[Tag]:
        version = tuple(int(part) for part in self.python.split("."))
        platforms = self.manylinux_platforms()
        return set(cpython_tags(version, platforms=platforms)) | set(
            compatible_tags(version, platforms=platforms)
        )


@cache
def uv_lock() -> dict[str, Any]:
    with (ROOT / "uv.lock").open("rb") as fh:
        return tomllib.load(fh)


def lock_packages() -> dict[str, dict[str, Any]]:
    packages: dict[str, dict[str, Any]] = {}
    for pkg in uv_lock()["package"]:
        if pkg["name"] in packages:
            # Several versions of one name (split resolution): keep the list explicit.
            raise AssertionError(
                f"uv.lock has more than one version of {pkg['name']!r}; teach "
                "tests/unit/nix/nix_support.py to pick by resolution-markers"
            )
        packages[pkg["name"]] = pkg
    return packages


def _applies(dep: Mapping[str, Any], env: Mapping[str, str]) -> bool:
    marker = dep.get("marker")
    return marker is None or Marker(marker).evaluate(dict(env))


def runtime_closure(root: str, target: Target, groups: Iterable[str] = ()) -> set[str]:
    """Names of the packages a venv of root installs: its dependencies (with extras, markers
    evaluated for target) plus those of the named dependency groups only (none for the image)."""
    packages = lock_packages()
    env = target.environment
    seen: set[tuple[str, tuple[str, ...]]] = set()
    stack: list[tuple[str, tuple[str, ...]]] = [(root, ())]
    for group in groups:
        stack.extend(
            (dep["name"], tuple(sorted(dep.get("extra", []))))
            for dep in packages[root]["dev-dependencies"][group]
            if _applies(dep, env)
        )
    while stack:
        name, extras = stack.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        pkg = packages[name]
        deps: list[Mapping[str, Any]] = list(pkg.get("dependencies", []))
        for extra in extras:
            deps += pkg.get("optional-dependencies", {}).get(extra, [])
        stack.extend(
            (dep["name"], tuple(sorted(dep.get("extra", [])))) for dep in deps if _applies(dep, env)
        )
    return {name for name, _ in seen}


def wheel_names(pkg: Mapping[str, Any]) -> Iterator[str]:
    for wheel in pkg.get("wheels", []):
        yield unquote(wheel["url"].rsplit("/", 1)[-1])


def compatible_wheels(pkg: Mapping[str, Any], tags: Iterable[Tag]) -> list[str]:
    wanted = set(tags)
    return [name for name in wheel_names(pkg) if wanted & set(parse_wheel_filename(name)[3])]
