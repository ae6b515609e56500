"""A deployment checkout for render tests: compose files and configs, stand-in secret files."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def make_root(tmp_path: Path, env: str = "prod") -> Path:
    """A deployment checkout: compose files and configs; dummy secret files (only hashed here)."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("compose.yaml", "compose.gpu.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "configs", root / "configs")
    (root / "secrets").mkdir()
    (root / "secrets" / f"{env}.yaml").write_text("sops: encrypted-document-stand-in\n")
    credentials = root / "creds"
    credentials.mkdir()
    (credentials / "db_password").write_text("db-pass-stand-in")
    (credentials / "redis_password").write_text("redis-pass-stand-in")
    (root / "age.key").write_text("AGE-SECRET-KEY-STAND-IN\n")
    return root
