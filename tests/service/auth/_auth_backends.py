"""Throwaway PostgreSQL and Redis for the auth suite (from the server binaries on PATH).

TODO(coordination): replace with the shared fixtures of tests/service/conftest.py once present.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Backends:
    database_url: str
    redis_url: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; the suite may run as root in containers.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@contextlib.contextmanager
def start_backends() -> Iterator[Backends]:
    missing = [b for b in ("initdb", "pg_ctl", "redis-server") if shutil.which(b) is None]
    if missing:
        pytest.skip(f"needs PostgreSQL and Redis server binaries on PATH (missing: {missing})")
    workdir = Path(tempfile.mkdtemp(prefix="keel-auth-pg-"))
    workdir.chmod(0o777)
    data = workdir / "data"
    pg_port, redis_port = _free_port(), _free_port()
    subprocess.run(
        _as_postgres(["initdb", "-D", str(data), "-U", "keel", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {pg_port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres(
            ["pg_ctl", "-D", str(data), "-o", options, "-w", "-l", str(workdir / "pg.log"), "start"]
        ),
        check=True,
        capture_output=True,
    )
    redis = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_port(redis_port)
        yield Backends(
            database_url=f"postgresql+asyncpg://keel@127.0.0.1:{pg_port}/postgres",
            redis_url=f"redis://127.0.0.1:{redis_port}/0",
        )
    finally:
        redis.terminate()
        redis.wait(10)
        subprocess.run(
            _as_postgres(["pg_ctl", "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(workdir, ignore_errors=True)
