"""flake.lock pins exactly the inputs flake.nix declares, and honours every `follows`."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from nix_support import ROOT, nix_eval

GITHUB_URL = re.compile(r"^github:(?P<owner>[^/]+)/(?P<repo>[^/?]+)(?:/(?P<ref>[^?]+))?$")
NAR_HASH = re.compile(r"^sha256-[A-Za-z0-9+/]{43}=$")
REV = re.compile(r"^[0-9a-f]{40}$")


@pytest.fixture(scope="module")
def declared() -> dict[str, Any]:
    """flake.nix's `inputs`, as Nix reads them (flake.nix is a plain Nix expression)."""
    inputs: dict[str, Any] = nix_eval(expr="(import ./flake.nix).inputs")
    return inputs


@pytest.fixture(scope="module")
def lock() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "flake.lock").read_text())
    return data


def root_inputs(lock: dict[str, Any]) -> dict[str, str]:
    inputs: dict[str, str] = lock["nodes"][lock["root"]]["inputs"]
    return inputs


def test_lock_format(lock: dict[str, Any]) -> None:
    assert lock["version"] == 7, "flake.lock must be lock format 7 (what current Nix writes)"
    assert lock["root"] in lock["nodes"]


def test_lock_names_exactly_the_declared_inputs(
    declared: dict[str, Any], lock: dict[str, Any]
) -> None:
    assert set(declared) == {"nixpkgs", "pyproject-nix", "uv2nix", "pyproject-build-systems"}
    assert set(root_inputs(lock)) == set(declared), (
        f"flake.lock root inputs {sorted(root_inputs(lock))} differ from flake.nix "
        f"{sorted(declared)}: run `nix flake lock` on a Nix host"
    )
    # With every transitive input following ours, the lock holds our inputs and nothing else:
    # no second nixpkgs (nixpkgs_2) sneaking in.
    assert set(lock["nodes"]) == set(declared) | {lock["root"]}, (
        f"flake.lock has extra nodes {sorted(set(lock['nodes']) - set(declared) - {lock['root']})}"
    )


def test_each_input_is_pinned_to_the_declared_source(
    declared: dict[str, Any], lock: dict[str, Any]
) -> None:
    for name, spec in declared.items():
        node = lock["nodes"][root_inputs(lock)[name]]
        url = GITHUB_URL.match(spec["url"])
        assert url, f"flake.nix input {name}: expected a github: URL, got {spec['url']!r}"
        original, locked = node["original"], node["locked"]
        assert original["type"] == locked["type"] == "github", name
        assert (original["owner"], original["repo"]) == (url["owner"], url["repo"]), (
            f"flake.lock {name} original {original['owner']}/{original['repo']} does not match "
            f"flake.nix {spec['url']}"
        )
        assert original.get("ref") == url["ref"], f"{name}: ref differs from flake.nix"
        assert locked["owner"].lower() == url["owner"].lower(), name
        assert locked["repo"] == url["repo"], name
        assert REV.match(locked["rev"]), f"{name}: rev {locked['rev']!r} is not a commit hash"
        assert NAR_HASH.match(locked["narHash"]), f"{name}: narHash {locked['narHash']!r}"
        assert isinstance(locked["lastModified"], int), name
        assert locked["lastModified"] > 1_600_000_000, f"{name}: lastModified is not a date"


def test_follows_are_honoured(declared: dict[str, Any], lock: dict[str, Any]) -> None:
    for name, spec in declared.items():
        node = lock["nodes"][root_inputs(lock)[name]]
        follows = {sub: ref["follows"] for sub, ref in spec.get("inputs", {}).items()}
        node_inputs: dict[str, Any] = node.get("inputs", {})
        for sub, target in follows.items():
            assert node_inputs.get(sub) == target.split("/"), (
                f"flake.nix says {name}.inputs.{sub}.follows = {target!r}, flake.lock has "
                f"{node_inputs.get(sub)!r}"
            )
        # Any input of an upstream flake we did not redirect would be its own (unpinned by us)
        # node: every one must be a follows path.
        not_followed = {sub: ref for sub, ref in node_inputs.items() if not isinstance(ref, list)}
        assert not not_followed, (
            f"flake.lock: {name} brings its own {sorted(not_followed)}; add "
            f"`inputs.<name>.follows` in flake.nix"
        )


def test_all_inputs_share_one_nixpkgs(declared: dict[str, Any]) -> None:
    for name, spec in declared.items():
        if name == "nixpkgs":
            continue
        assert spec.get("inputs", {}).get("nixpkgs") == {"follows": "nixpkgs"}, (
            f"flake.nix: {name} must follow our nixpkgs"
        )


# --- the trees of ../shared/nix-inputs (nix/check-real-inputs.sh evaluates with them) -------

INPUTS_DIR = ROOT.parent / "shared" / "nix-inputs"


def test_inputs_are_pinned_to_the_revisions_whose_trees_are_checked(lock: dict[str, Any]) -> None:
    """Every input but nixpkgs is pinned exactly as the manifest of input trees lists it, so the
    real-input evaluation covers what a Nix host fetches."""
    manifest_file = INPUTS_DIR / "manifest.json"
    if not manifest_file.is_file():
        pytest.skip(f"needs {manifest_file} (the input trees the real-input evaluation uses)")
    manifest = {entry["owner_repo"]: entry for entry in json.loads(manifest_file.read_text())}
    for name, node_name in root_inputs(lock).items():
        if name == "nixpkgs":
            continue
        locked = lock["nodes"][node_name]["locked"]
        entry = manifest[f"{locked['owner']}/{locked['repo']}"]
        pinned = {key: locked[key] for key in ("rev", "narHash", "lastModified")}
        assert pinned == {key: entry[key] for key in ("rev", "narHash", "lastModified")}, name
