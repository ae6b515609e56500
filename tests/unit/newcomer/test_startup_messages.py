"""What a newcomer sees when something is wrong: one clear line each, counted consistently."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
KEEL = [sys.executable, "-m", "keel.cli"]


def _env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "HTTP_", "LOG_"))}
    return {**base, "APP_ENV": "local", "KEEL_ROOT": str(REPO), **extra}


def test_port_in_use_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [*KEEL, "serve"],
            env=_env(HTTP_PORT=str(port), DB_DATABASE=str(tmp_path / "k.db")),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 3
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in lines[0]
    assert "HTTP_PORT=" in lines[0]


def test_unreachable_database_is_reported_once_with_consistent_counts() -> None:
    env = _env(
        DB_TYPE="postgresql",
        DB_HOST="127.0.0.1",
        DB_PORT="1",  # nothing listens
        DB_PASSWORD="unused-password",
        DB_CONNECT_RETRIES="3",
        LOG_FORMAT="console",
    )
    result = subprocess.run(
        [*KEEL, "migrate"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1
    assert out.count("cannot connect to postgresql") == 1, out
    assert "attempt 1 of 3 failed" in out
    assert "attempt 2 of 3 failed" in out
    assert "after 3 attempts" in out
    assert "Traceback" not in out


def test_one_report_names_type_and_range_problems_together() -> None:
    result = subprocess.run(
        [*KEEL, "config", "show"],
        env=_env(HTTP_PORT="eighty", DB_POOL_SIZE="-5", HTTP_WORKERS="0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "(3 problems)" in result.stderr
    assert "HTTP_PORT: expected an integer, got 'eighty'" in result.stderr
    assert "DB_POOL_SIZE: expected 1..1000, got -5" in result.stderr
    assert "HTTP_WORKERS: expected 1..256, got 0" in result.stderr
