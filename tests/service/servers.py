"""Throwaway PostgreSQL, Redis and MariaDB servers for the service tests.

Each runs from the Debian server binaries in a temp dir on a free 127.0.0.1 port, tuned for
speed over durability (fsync off); the suite starts each at most once per session.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import free_port

PG_USER = "keel"
PG_PASSWORD = "pg-test-password"
MYSQL_USER = "keel"
MYSQL_PASSWORD = "mysql-test-password"


class MissingBinaryError(Exception):
    pass


def wait_port(
    port: int,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"server exited with {process.returncode}:\n{tail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def _find(name: str, patterns: list[str]) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        if matches:
            return matches[-1]
    return None


def pg_bin(name: str) -> str | None:
    return _find(name, [f"/usr/lib/postgresql/*/bin/{name}", f"/usr/local/pgsql/bin/{name}"])


def check_binaries() -> None:
    """Fail with one line naming the apt package for the first missing server."""
    needs = [
        ("postgres", pg_bin("postgres") and pg_bin("initdb"), "postgresql"),
        ("redis-server", _find("redis-server", []), "redis-server"),
        (
            "mariadbd",
            _find("mariadbd", ["/usr/sbin/mariadbd"])
            and _find("mariadb-install-db", ["/usr/bin/mariadb-install-db"]),
            "mariadb-server",
        ),
    ]
    for what, found, package in needs:
        if not found:
            raise MissingBinaryError(
                f"service tests need the {what} server binary: apt-get install -y {package}"
            )


def _as_user(user: str) -> list[str]:
    # PostgreSQL refuses to run as root; Debian's package creates the `postgres` user.
    return ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []


def _stop(process: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Postgres:
    # Its own dir directly under /tmp: the `postgres` user must reach it (pytest's are 0700).
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="keel-pg-")))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # True: PostgreSQL's own defaults (fsync, synchronous_commit, full_page_writes on), as a
    # production server runs; the benchmarks' headline figures use it. False: tuned for tests.
    durable: bool = False

    @property
    def data(self) -> Path:
        return self.root / "data"

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        pwfile = self.root / "pw"
        pwfile.write_text(PG_PASSWORD)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run(
            [
                *_as_user("postgres"),
                str(pg_bin("initdb")),
                "-D",
                str(self.data),
                "-U",
                PG_USER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        log = self.root / "postgres.log"
        self.process = subprocess.Popen(
            [
                *_as_user("postgres"),
                str(pg_bin("postgres")),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=127.0.0.1",
                *self._durability_settings(),
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=128MB",
            ],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_port(self.port, 30, self.process, log)
        # The port opens a moment before connections are accepted.
        deadline = time.monotonic() + 15
        while self.psql("postgres", "SELECT 1", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise TimeoutError("postgres not accepting connections")
            time.sleep(0.1)

    def _durability_settings(self) -> list[str]:
        if self.durable:
            return []
        off = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
        return [arg for setting in off for arg in ("-c", setting)]

    def stop(self) -> None:
        _stop(self.process)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, database: str, sql: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *_as_user("postgres"),
                str(pg_bin("psql")),
                "-h",
                str(self.root),
                "-p",
                str(self.port),
                "-U",
                PG_USER,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
                "-c",
                sql,
            ],
            check=check,
            capture_output=True,
            text=True,
        )

    def create_database(self, name: str) -> str:
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return name

    def env(self, database: str) -> dict[str, str]:
        return {
            "DB_TYPE": "postgresql",
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(self.port),
            "DB_USERNAME": PG_USER,
            "DB_PASSWORD": PG_PASSWORD,
            "DB_DATABASE": database,
        }


@dataclass
class RedisServer:
    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.root / "redis.log"
        self.process = subprocess.Popen(
            [
                str(_find("redis-server", [])),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.root),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_port(self.port, 15, self.process, log)

    def stop(self) -> None:
        _stop(self.process)

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def env(self, db: int = 0) -> dict[str, str]:
        return {
            "REDIS_BACKEND": "redis",
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(self.port),
            "REDIS_DB": str(db),
        }


@dataclass
class MariaDb:
    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.root / "mysqld.sock"

    def _user_args(self) -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        install = _find("mariadb-install-db", ["/usr/bin/mariadb-install-db"])
        subprocess.run(
            [
                str(install),
                f"--datadir={self.root / 'data'}",
                *self._user_args(),
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        log = self.root / "mariadb.log"
        self.process = subprocess.Popen(
            [
                str(_find("mariadbd", ["/usr/sbin/mariadbd"])),
                "--no-defaults",
                f"--datadir={self.root / 'data'}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.socket_path}",
                f"--pid-file={self.root / 'mysqld.pid'}",
                *self._user_args(),
                "--skip-name-resolve",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--skip-log-bin",
            ],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_port(self.port, 60, self.process, log)
        self.sql(
            f"CREATE USER IF NOT EXISTS '{MYSQL_USER}'@'%' IDENTIFIED BY '{MYSQL_PASSWORD}';"
            f"GRANT ALL PRIVILEGES ON *.* TO '{MYSQL_USER}'@'%'; FLUSH PRIVILEGES;"
        )

    def sql(self, statement: str) -> subprocess.CompletedProcess[str]:
        client = _find("mariadb", ["/usr/bin/mariadb"]) or "mysql"
        return subprocess.run(
            [client, f"--socket={self.socket_path}", "-uroot", "-e", statement],
            check=True,
            capture_output=True,
            text=True,
        )

    def create_database(self, name: str) -> str:
        self.sql(f"CREATE DATABASE `{name}`")
        return name

    def stop(self) -> None:
        _stop(self.process, timeout=30)

    def env(self, database: str) -> dict[str, str]:
        return {
            "DB_TYPE": "mysql",
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(self.port),
            "DB_USERNAME": MYSQL_USER,
            "DB_PASSWORD": MYSQL_PASSWORD,
            "DB_DATABASE": database,
        }
