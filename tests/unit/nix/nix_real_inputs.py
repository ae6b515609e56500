"""Match flake.lock's pins against the trees in a nix-inputs directory (../shared/nix-inputs).

Prints one JSON object on stdout: for each locked GitHub input that has a tree, its node name,
the tree's path and the locked rev/narHash. Exits 1 naming every locked input whose revision has
no tree there, so a future bump of flake.lock cannot skip the real-input evaluation silently.
nixpkgs is the exception: its tree is never available offline (several GB); the check replaces
it with the real nixpkgs lib and stubbed builders and says so.

Usage: python3 tests/unit/nix/nix_real_inputs.py FLAKE_LOCK|- INPUTS_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# Inputs replaced by a stand-in rather than taken from a tree (see the module docstring).
STUBBED = {"nixpkgs"}


def resolve(lock: dict[str, Any], inputs_dir: Path) -> tuple[dict[str, Any], list[str]]:
    manifest_file = inputs_dir / "manifest.json"
    manifest: list[dict[str, Any]] = json.loads(manifest_file.read_text())
    by_repo = {entry["owner_repo"]: entry for entry in manifest}
    resolved: dict[str, Any] = {}
    problems: list[str] = []
    for node in lock["nodes"][lock["root"]]["inputs"].values():
        if not isinstance(node, str) or node in STUBBED:
            continue
        locked = lock["nodes"][node]["locked"]
        repo = f"{locked['owner']}/{locked['repo']}"
        entry = by_repo.get(repo)
        if entry is None:
            problems.append(f"{node}: {manifest_file} has no tree of {repo}")
            continue
        if entry["rev"] != locked["rev"]:
            problems.append(
                f"{node}: flake.lock pins {repo} at {locked['rev'][:12]}, but {inputs_dir} holds "
                f"{entry['rev'][:12]}: no tree for the locked revision (re-pin flake.lock to the "
                "manifest, or add a tree of the locked revision)"
            )
            continue
        tree = inputs_dir / entry["name"]
        if not tree.is_dir():
            problems.append(f"{node}: {tree} is listed in the manifest but missing")
            continue
        resolved[node] = {
            "repo": repo,
            "tree": str(tree.resolve()),
            "rev": locked["rev"],
            "narHash": locked["narHash"],
            "manifestNarHash": entry["narHash"],
            "lastModified": locked["lastModified"],
        }
    lib = by_repo.get("nix-community/nixpkgs.lib")
    if lib is None or not (inputs_dir / lib["name"] / "lib").is_dir():
        problems.append(f"nixpkgs: {inputs_dir} has no nixpkgs.lib tree (the real nixpkgs lib)")
    else:
        resolved["nixpkgs-lib"] = {
            "tree": str((inputs_dir / lib["name"]).resolve()),
            "rev": lib["rev"],
        }
    return resolved, problems


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    lock = json.loads(sys.stdin.read() if argv[1] == "-" else Path(argv[1]).read_text())
    resolved, problems = resolve(lock, Path(argv[2]))
    if problems:
        for problem in problems:
            print(f"check-real-inputs: {problem}", file=sys.stderr)
        return 1
    print(json.dumps(resolved, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
