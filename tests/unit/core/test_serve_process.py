"""#14 defect 6: a second `keel serve` on a busy port refuses with one line (no SO_REUSEPORT
split of traffic), and Granian workers die with their main process even after kill -9."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(port: int, tmp_path: Path, log: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DB_", "REDIS_", "HTTP_"))},
        "APP_ENV": "local",
        "KEEL_ROOT": str(REPO),
        "LOG_FORMAT": "json",
        "HTTP_WORKERS": str(workers),
        "DB_DATABASE": str(tmp_path / "keel.db"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "keel.cli", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def live(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1):
            return True
    except OSError:
        return False


def wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(child) for child in text)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture
def first_server(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    proc = serve(port, tmp_path, tmp_path / "first.log", workers=2)
    try:
        wait(lambda: live(port), 60, "the first server")
        yield port, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_second_serve_on_a_busy_port_refuses_with_one_line(
    first_server: tuple[int, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    port, _ = first_server
    second = serve(port, tmp_path, tmp_path / "second.log")
    code = second.wait(60)
    output = (tmp_path / "second.log").read_text()
    assert code == 3, output
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in output
    assert "HTTP_PORT" in output
    assert "Traceback" not in output


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc and prctl")
def test_workers_die_with_their_main_process(
    first_server: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, proc = first_server
    workers = children(proc.pid)
    assert len(workers) == 2, workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    wait(lambda: not any(alive(pid) for pid in workers), 30, "the orphaned workers to exit")
    assert not live(port)
