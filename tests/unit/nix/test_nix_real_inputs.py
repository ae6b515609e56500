"""tests/unit/nix/nix_real_inputs.py: which locked inputs have a tree, and a clear failure for
every pin that has none (so a bump of flake.lock cannot skip the real-input evaluation)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from nix_real_inputs import resolve
from nix_support import ROOT

REV_A = "a" * 40
REV_B = "b" * 40


def github(owner: str, repo: str, rev: str) -> dict[str, Any]:
    return {
        "locked": {
            "owner": owner,
            "repo": repo,
            "rev": rev,
            "narHash": "sha256-" + "A" * 43 + "=",
            "lastModified": 1_700_000_000,
            "type": "github",
        }
    }


def make_lock(uv2nix_rev: str) -> dict[str, Any]:
    return {
        "root": "root",
        "nodes": {
            "root": {"inputs": {"nixpkgs": "nixpkgs", "uv2nix": "uv2nix"}},
            "nixpkgs": github("NixOS", "nixpkgs", REV_A),
            "uv2nix": github("pyproject-nix", "uv2nix", uv2nix_rev),
        },
    }


def make_inputs(tmp_path: Path) -> Path:
    for tree in ("uv2nix", "nixpkgs.lib/lib"):
        (tmp_path / tree).mkdir(parents=True)
    manifest = [
        {"name": "uv2nix", "owner_repo": "pyproject-nix/uv2nix", "rev": REV_A},
        {"name": "nixpkgs.lib", "owner_repo": "nix-community/nixpkgs.lib", "rev": REV_B},
    ]
    for entry in manifest:
        entry |= {"narHash": "sha256-" + "A" * 43 + "=", "lastModified": 1_700_000_000}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def test_a_pin_with_a_tree_resolves_to_it(tmp_path: Path) -> None:
    resolved, problems = resolve(make_lock(REV_A), make_inputs(tmp_path))
    assert problems == []
    assert resolved["uv2nix"]["tree"] == str((tmp_path / "uv2nix").resolve())
    assert resolved["nixpkgs-lib"]["tree"] == str((tmp_path / "nixpkgs.lib").resolve())
    assert "nixpkgs" not in resolved  # replaced by the stand-in, never fetched


def test_a_pin_without_a_tree_fails_naming_the_input_and_both_revisions(tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path)
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests/unit/nix/nix_real_inputs.py"), "-", str(inputs)],
        input=json.dumps(make_lock(REV_B)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "uv2nix: flake.lock pins pyproject-nix/uv2nix at bbbbbbbbbbbb" in result.stderr
    assert "holds aaaaaaaaaaaa: no tree for the locked revision" in result.stderr


def test_a_missing_nixpkgs_lib_tree_is_named(tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path)
    (inputs / "nixpkgs.lib" / "lib").rmdir()
    _, problems = resolve(make_lock(REV_A), inputs)
    assert problems == [f"nixpkgs: {inputs} has no nixpkgs.lib tree (the real nixpkgs lib)"]
