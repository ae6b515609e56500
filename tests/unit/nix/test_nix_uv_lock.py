"""uv.lock as uv2nix reads it.

uv2nix parses uv.lock with closed Nix function patterns (lib/lock1.nix: parseLock,
parsePackage, parseDependency, parseMetadata): a field it does not know, written by a newer uv,
fails the Nix evaluation with "called with unexpected argument". Nix's own TOML parser must
accept the file too (`make check-nix` runs builtins.fromTOML on it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from nix_support import nix_eval, uv_lock

# The arguments uv2nix's lib/lock1.nix accepts (pyproject-nix/uv2nix, the revision in flake.lock).
TOP_LEVEL = {
    "version",
    "requires-python",
    "manifest",
    "package",
    "resolution-markers",
    "supported-markers",
    "required-markers",
    "options",
    "conflicts",
    "revision",
}
PACKAGE = {
    "name",
    "source",
    "version",
    "resolution-markers",
    "dependencies",
    "optional-dependencies",
    "dev-dependencies",
    "metadata",
    "wheels",
    "sdist",
}
DEPENDENCY = {"name", "marker", "version", "source", "extra"}
METADATA = {"requires-dist", "requires-dev", "provides-extras"}
OPTIONS = {"resolution-mode", "exclude-newer", "prerelease-mode"}


def unknown(keys: Iterable[str], known: set[str], where: str) -> list[str]:
    return [f"{where}: {key}" for key in keys if key not in known]


def dependency_lists(pkg: Mapping[str, Any]) -> Iterable[list[Mapping[str, Any]]]:
    yield pkg.get("dependencies", [])
    yield from pkg.get("optional-dependencies", {}).values()
    yield from pkg.get("dev-dependencies", {}).values()


def test_uv_lock_uses_only_fields_uv2nix_parses() -> None:
    lock = uv_lock()
    assert lock["version"] == 1, "uv2nix reads uv.lock version 1 only"
    problems = unknown(lock, TOP_LEVEL, "top level")
    problems += unknown(lock.get("options", {}), OPTIONS, "[options]")
    for pkg in lock["package"]:
        where = f"package {pkg['name']}"
        problems += unknown(pkg, PACKAGE, where)
        problems += unknown(pkg.get("metadata", {}), METADATA, f"{where} metadata")
        for deps in dependency_lists(pkg):
            for dep in deps:
                problems += unknown(dep, DEPENDENCY, f"{where} dependency {dep['name']}")
    assert not problems, (
        "uv.lock has fields the pinned uv2nix does not parse (update the uv2nix input with "
        "`nix flake update uv2nix`, or lock with an older uv): " + "; ".join(problems)
    )


def test_reserved_package_names() -> None:
    names = {pkg["name"] for pkg in uv_lock()["package"]}
    assert not names & {"python", "pkgs"}, "uv2nix reserves the names python and pkgs"


@pytest.mark.parametrize("path", ["uv.lock", "pyproject.toml"])
def test_nix_toml_parser_reads(path: str) -> None:
    assert nix_eval(expr=f"builtins.isAttrs (builtins.fromTOML (builtins.readFile ./{path}))")
