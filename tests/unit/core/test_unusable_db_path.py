"""#14 defect 9: an unusable SQLite path is one clear line and exit 2 for `keel migrate` and
`keel serve`, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
KEEL = str(Path(sys.executable).with_name("keel"))


@pytest.mark.parametrize("command", [["migrate"], ["serve", "--port", "1"]])
def test_unusable_sqlite_path_is_one_line(command: list[str], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a directory cannot be created below a regular file
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DB_", "REDIS_"))},
        "APP_ENV": "local",
        "KEEL_ROOT": str(REPO),
        "DB_DATABASE": str(blocker / "sub" / "keel.db"),
    }
    done = subprocess.run(
        [KEEL, *command], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    assert f"DB_DATABASE: cannot use {blocker / 'sub' / 'keel.db'}: cannot create" in done.stderr
