"""docs/auth.md runs: its shell blocks, in order, against a real `keel serve` (local, SQLite)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from tests.support import REPO, free_port

DOC = REPO / "docs" / "auth.md"
BIN = Path(sys.executable).parent
_BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _blocks() -> list[tuple[str, str, str]]:
    return [(m.group(1), m.group(2).strip(), m.group(3)) for m in _BLOCK.finditer(DOC.read_text())]


def _wait(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {timeout}s")


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DB_", "REDIS_", "JWT_"))},
        "APP_ENV": "local",
        "KEEL_ROOT": str(REPO),
        "DB_DATABASE": str(tmp_path / "keel.db"),
        "HTTP_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        # The rotation example waits out the key cache; keep that wait short here.
        "API_KEY_CACHE_SECONDS": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "KEEL_URL": f"http://127.0.0.1:{port}",
    }
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN / "keel"), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait(f"http://127.0.0.1:{port}/health/live")
        yield env
    finally:
        proc.terminate()
        proc.wait(30)


def test_every_block_is_shell_python_or_config() -> None:
    kinds = {kind for kind, _, _ in _blocks()}
    assert kinds <= {"sh", "python", "yaml", "text"}, kinds
    assert any(info == "file=keel_client.py" for _, info, _ in _blocks())


def test_docs_auth_commands_run_end_to_end(server: dict[str, str], tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    script = ["set -euo pipefail"]
    for kind, info, body in _blocks():
        if kind == "python" and info.startswith("file="):
            (work / info.removeprefix("file=")).write_text(body)
        elif kind == "sh":
            script.append(body)
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=work,
        env=server,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    me = json.loads(lines[0])
    assert me["username"] == "alice"
    assert me["roles"] == ["admin"]
    whoami = json.loads(lines[1])
    assert whoami == {"kind": "service", "name": "reporting", "roles": []}
    jobs = [doc for doc in map(json.loads, lines) if doc.get("kind") == "echo"]
    assert jobs, result.stdout
    assert jobs[-1]["payload"] == {"hello": "world"}
    # The rotation example: the new key worked before it was disabled.
    assert {"kind": "service", "name": "reporting-2026-12", "roles": []} in map(json.loads, lines)
    key = json.loads((work / "reporting-key.json").read_text())
    # The secret was shown once and is not what the database holds.
    assert key["secret"] not in (tmp_path / "keel.db").read_bytes().decode("latin-1")
