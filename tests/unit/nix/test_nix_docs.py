"""docs/nix.md names only flake outputs and make targets that exist."""

from __future__ import annotations

import re

from nix_support import NIX_DIR, ROOT, nix_eval

DOC = (ROOT / "docs" / "nix.md").read_text()


def make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_-]+):", makefile, flags=re.MULTILINE))


def test_flake_references_are_outputs() -> None:
    names = nix_eval(
        expr=(
            "let o = (import ./flake.nix).outputs (import ./nix/tests/stub.nix).inputs; in "
            "builtins.attrNames (o.packages.x86_64-linux // o.apps.x86_64-linux)"
        )
    )
    referenced = set(re.findall(r"\.#([A-Za-z0-9_-]+)", DOC))
    assert referenced, "docs/nix.md names no flake outputs"
    assert referenced <= set(names), f"docs/nix.md names missing outputs {referenced - set(names)}"


def test_make_targets_exist() -> None:
    script = (NIX_DIR / "build-image.sh").read_text()
    referenced = set(re.findall(r"\bmake ([a-z][a-z0-9-]+)", DOC + script))
    missing = referenced - make_targets()
    assert not missing, (
        f"docs/nix.md or nix/build-image.sh name make targets the Makefile lacks: {missing}"
    )
