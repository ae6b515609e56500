"""Files a tutorial writes next to you (passwords, tokens, keys) are ignored by git."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _ignored(name: str) -> bool:
    result = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", name], cwd=REPO, check=False
    )
    return result.returncode == 0


def test_credential_files_are_ignored() -> None:
    for name in (
        "alice.pw",
        "tokens.json",
        "tokens2.json",
        "reporting-key.json",
        "new-key.json",
        "host.agekey",
        "jwt-signing.pem",
        "docs/alice.pw",
    ):
        assert _ignored(name), name


def test_committed_keys_and_project_files_are_not_ignored() -> None:
    for name in (
        "secrets/keys/local.agekey",
        "secrets/keys/test.agekey",
        "secrets/dev.yaml",
        "docs/gpu-snapshot.schema.json",
        "nix/config.json",
    ):
        assert not _ignored(name), name
