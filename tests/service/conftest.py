"""Real servers for the service tests: PostgreSQL, Redis and MariaDB, started by the suite.

Each server starts once per session (only when a test asks for it) on a free port in a temp
dir. Tests get their own database (a copy of a migrated template) and a flushed Redis.
If a server binary is missing the run stops up front with one line naming the apt package.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from keel.config import Settings, load
from tests.service.servers import MariaDb, MissingBinaryError, Postgres, RedisServer, check_binaries
from tests.support import REPO, no_secrets

KEEL = str(Path(sys.executable).with_name("keel"))
_counter = itertools.count()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    service = Path(__file__).parent
    for item in items:
        if service in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.service)
    if any(item.get_closest_marker("service") for item in items):
        try:
            check_binaries()
        except MissingBinaryError as exc:
            pytest.exit(str(exc), returncode=4)


def make_settings(env: dict[str, str]) -> Settings:
    """``local`` settings plus overrides (as a deployment's env would give them)."""
    return load(
        "local", root=REPO, environ={"LOG_FORMAT": "json", **env}, secrets_reader=no_secrets
    )


def process_env(env: dict[str, str]) -> dict[str, str]:
    """Environment for a `keel ...` subprocess: local config plus the overrides."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "REDIS_", "WORKER_"))}
    return {
        **base,
        "APP_ENV": "local",
        "KEEL_ROOT": str(REPO),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        **env,
    }


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Postgres]:
    server = Postgres()
    server.init()
    server.start()
    # A migrated template: each test's database is a cheap copy of it.
    server.create_database("keel_template")
    env = server.env("keel_template")
    from keel.db.migrate import migrate

    asyncio.run(migrate(make_settings(env)))
    yield server
    server.stop()
    server.cleanup()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDb]:
    server = MariaDb(tmp_path_factory.mktemp("mariadb"))
    server.init()
    server.start()
    yield server
    server.stop()


def new_pg_env(pg_server: Postgres) -> dict[str, str]:
    """A fresh, migrated PostgreSQL database (a copy of the template)."""
    name = f"t{os.getpid()}_{next(_counter)}"
    pg_server.psql("postgres", f'CREATE DATABASE "{name}" TEMPLATE keel_template')
    return pg_server.env(name)


def new_redis_env(redis_server: RedisServer) -> dict[str, str]:
    """The shared Redis with a key prefix of its own: tests never see each other's keys."""
    return {
        **redis_server.env(),
        "REDIS_KEY_PREFIX": f"t{os.getpid()}_{next(_counter)}",
        "REDIS_CONNECT_RETRIES": "2",
    }


# Short timings so fault tests finish in seconds.
FAST_TIMINGS = {
    "WORKER_IDLE_TIMEOUT": "3",
    "WORKER_RECLAIM_INTERVAL": "0.5",
    "WORKER_HEARTBEAT_INTERVAL": "0.3",
    "WORKER_HEARTBEAT_TTL": "1.5",
    "WORKER_SHUTDOWN_TIMEOUT": "15",
    "WORKER_FETCH_COUNT": "10",
    "JOB_RETRY_BACKOFF": "0.1",
    "JOB_RETRY_BACKOFF_MAX": "0.5",
    "IDS_LEASE_TTL": "5",
}


@pytest.fixture
def pg_env(pg_server: Postgres) -> dict[str, str]:
    """A fresh, migrated PostgreSQL database for this test."""
    return new_pg_env(pg_server)


@pytest.fixture
def pg_empty_env(pg_server: Postgres) -> dict[str, str]:
    """A fresh, empty PostgreSQL database (no migrations applied)."""
    return pg_server.env(pg_server.create_database(f"e{os.getpid()}_{next(_counter)}"))


@pytest.fixture
def redis_env(redis_server: RedisServer) -> dict[str, str]:
    return new_redis_env(redis_server)


@pytest.fixture
def stack_env(pg_env: dict[str, str], redis_env: dict[str, str]) -> dict[str, str]:
    """PostgreSQL + Redis of this test's own, with short timings."""
    return {**pg_env, **redis_env, **FAST_TIMINGS}


class Proc:
    """A `keel` subprocess in its own process group, with its output in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [KEEL, *args],
            env=process_env(env),
            cwd=REPO,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.signal_group(15)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.signal_group(9)
                self.process.wait(5)


@contextlib.contextmanager
def spawner(log_dir: Path) -> Iterator[Callable[..., Proc]]:
    started: list[Proc] = []

    def start(args: list[str], env: dict[str, str], name: str = "proc") -> Proc:
        proc = Proc(args, env, log_dir / f"{name}-{len(started)}.log")
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.stop()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    with spawner(tmp_path) as start:
        yield start


def wait_for(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
