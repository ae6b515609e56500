"""Where the dump tools run: on this host against a PostgreSQL it reaches, or in the Compose
stack's own containers.

Compose: ``pg_dump``/``pg_restore``/``psql`` run inside the ``postgres`` container (so their
major version is always the server's; the app image carries no PostgreSQL client) and
``redis-cli`` inside the ``redis`` container; their stdout streams back through ``keel`` on the
host, which encrypts it. Local: the host's binaries, the connection from Keel's settings,
the password in the environment (never on a command line).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from keel.backup.errors import BackupError, TargetError

if TYPE_CHECKING:
    from keel.config import Settings

# compose.yaml initialises the stack's PostgreSQL with this user and database.
COMPOSE_DB_USER = "keel"
COMPOSE_DB_NAME = "keel"
# Inside the redis container: read the password from the credentials volume, not an argument.
_REDIS_WITH_AUTH = 'REDISCLI_AUTH="$(cat /run/keel-credentials/redis_password)" exec redis-cli "$@"'


@dataclass(frozen=True)
class Invocation:
    argv: list[str]
    env: dict[str, str] | None = None  # the whole environment, or None for this process's


class Tools:
    """The interface both places implement."""

    describe: str
    database: str
    has_redis: bool

    def pg(self, argv: list[str], *, database: str | None = None) -> Invocation:
        raise NotImplementedError

    def pg_offline(self, argv: list[str]) -> Invocation:
        """A PostgreSQL client tool that needs no server (``pg_restore --list``)."""
        raise NotImplementedError

    def redis_cli(self, argv: list[str]) -> Invocation:
        raise NotImplementedError

    def use_server_major(self, major: int) -> None:
        """Pick client binaries for this server major (only where several are installed)."""


def run_text(call: Invocation, *, timeout: float = 120, stdin: bytes | None = None) -> str:
    """Run a short command; its stdout, or BackupError with the last line of its stderr."""
    try:
        result = subprocess.run(  # noqa: S603 - argv built here, no shell
            call.argv, env=call.env, input=stdin, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise BackupError(f"{exc.filename}: not installed (needed for backup/restore)") from None
    except subprocess.TimeoutExpired:
        raise BackupError(f"{Path(call.argv[0]).name} timed out after {timeout:.0f}s") from None
    if result.returncode != 0:
        raise BackupError(f"{tool_name(call)} failed: {last_line(result.stderr)}{_hint(call)}")
    return result.stdout.decode("utf-8", "replace")


def _hint(call: Invocation) -> str:
    """For a compose exec that found no container: say how to start the stack."""
    if "exec-compose" in call.argv and "exec" in call.argv and call.env:
        env = call.env.get("ENV", "ENV")
        return f" (is the stack up? `make up ENV={env}`)"
    return ""


def tool_name(call: Invocation) -> str:
    """The dump tool an invocation runs (not the compose wrapper around it)."""
    for word in call.argv:
        name = Path(word).name
        if name in {"pg_dump", "pg_restore", "psql", "redis-cli", "createdb"}:
            return name
    return Path(call.argv[0]).name


def last_line(stderr: bytes | str) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # pg_restore follows its error with the failing statement ("Command was: ..."): the error
    # line is the one that says what went wrong.
    errors = [line for line in lines if "error:" in line.lower()]
    if errors:
        return errors[-1]
    return lines[-1] if lines else "no error output"


def psql(tools: Tools, sql: str, *, database: str | None = None) -> str:
    """One statement's unaligned result (rows on lines, ``|`` between columns)."""
    return run_text(
        tools.pg(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql], database=database
        )
    ).strip()


def pg_binary(name: str, major: int | None = None) -> str:
    """The host's ``name`` of PostgreSQL ``major`` (Debian keeps each major in its own dir)."""
    override = os.environ.get("KEEL_PG_BINDIR")
    if override:
        return str(Path(override) / name)
    if major is not None:
        exact = Path(f"/usr/lib/postgresql/{major}/bin/{name}")
        if exact.exists():
            return str(exact)
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return found[-1]
    return shutil.which(name) or name


@dataclass
class LocalTools(Tools):
    """A PostgreSQL (and Redis) this host reaches, as Keel's settings name them."""

    host: str
    port: int
    user: str
    password: str
    database: str
    redis_host: str | None = None
    redis_port: int = 6379
    redis_db: int = 0
    redis_password: str = ""
    redis_tls: bool = False
    server_major: int | None = None
    describe: str = field(init=False)
    has_redis: bool = field(init=False)

    def __post_init__(self) -> None:
        self.describe = f"local postgresql {self.user}@{self.host}:{self.port}/{self.database}"
        self.has_redis = self.redis_host is not None

    def _pg_env(self, database: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(
            PGHOST=self.host,
            PGPORT=str(self.port),
            PGUSER=self.user,
            PGDATABASE=database,
            PGCONNECT_TIMEOUT="10",
            PGAPPNAME="keel-backup",
        )
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def use_server_major(self, major: int) -> None:
        self.server_major = major

    def pg(self, argv: list[str], *, database: str | None = None) -> Invocation:
        binary = pg_binary(argv[0], self.server_major)
        return Invocation([binary, *argv[1:]], self._pg_env(database or self.database))

    def pg_offline(self, argv: list[str]) -> Invocation:
        return self.pg(argv)

    def redis_cli(self, argv: list[str]) -> Invocation:
        if self.redis_host is None:
            raise BackupError("no Redis configured (REDIS_BACKEND=memory)")
        env = {k: v for k, v in os.environ.items() if k != "REDISCLI_AUTH"}
        if self.redis_password:
            env["REDISCLI_AUTH"] = self.redis_password
        tls = ["--tls"] if self.redis_tls else []
        base = [shutil.which("redis-cli") or "redis-cli", *tls, "-h", self.redis_host]
        return Invocation([*base, "-p", str(self.redis_port), "-n", str(self.redis_db), *argv], env)


def local_tools(settings: Settings) -> LocalTools:
    """LocalTools from Keel's settings (``DB_*``/``DATABASE_URL``, ``REDIS_*``/``REDIS_URL``)."""
    from keel.db.url import DatabaseUrlError, database_target
    from keel.redis_conn import redis_url

    try:
        target = database_target(settings)
    except DatabaseUrlError as exc:
        raise TargetError(str(exc)) from None
    if target.type != "postgresql":
        raise TargetError(
            f"DB_TYPE={target.type}: keel backup dumps PostgreSQL only (for SQLite, stop the "
            "service and copy the database file; for MariaDB use mariadb-dump)"
        )
    tools = LocalTools(
        host=target.host,
        port=target.port,
        user=target.url.username or "",
        password=target.url.password or "",
        database=target.database,
    )
    if settings.redis.backend != "memory":
        parts = urlsplit(redis_url(settings))
        tools.redis_host = parts.hostname or "127.0.0.1"
        tools.redis_port = parts.port or 6379
        tools.redis_db = int((parts.path or "/0").lstrip("/") or 0)
        tools.redis_password = unquote(parts.password or "")
        tools.redis_tls = parts.scheme == "rediss"
        tools.has_redis = True
    return tools


@dataclass
class ComposeTools(Tools):
    """The Compose stack of ``env`` (project ``COMPOSE_PROJECT_NAME`` or ``keel-<env>``)."""

    root: Path
    env: str
    database: str = COMPOSE_DB_NAME
    describe: str = field(init=False)
    has_redis: bool = True

    def __post_init__(self) -> None:
        self.project = os.environ.get("COMPOSE_PROJECT_NAME") or f"keel-{self.env}"
        self.describe = f"compose project {self.project}"

    @property
    def script(self) -> str:
        return str(self.root / "containers" / "compose.sh")

    def _env(self) -> dict[str, str]:
        return {**os.environ, "ENV": self.env}

    def compose(self, *args: str) -> Invocation:
        """Any compose command on this stack (files, project and images as `make up` picks)."""
        return Invocation([self.script, "exec-compose", *args], self._env())

    def action(self, *args: str) -> Invocation:
        """A compose.sh action: ``up [services]`` (waits until healthy), ``down``."""
        return Invocation([self.script, *args], self._env())

    def pg(self, argv: list[str], *, database: str | None = None) -> Invocation:
        return self.compose(
            "exec",
            "-T",
            "-e",
            f"PGUSER={COMPOSE_DB_USER}",
            "-e",
            f"PGDATABASE={database or self.database}",
            "postgres",
            *argv,
        )

    def pg_offline(self, argv: list[str]) -> Invocation:
        # A throwaway container of the postgres image: no server started, no data touched.
        return self.compose(
            "run", "--rm", "--no-deps", "-T", "--entrypoint", argv[0], "postgres", *argv[1:]
        )

    def redis_cli(self, argv: list[str]) -> Invocation:
        return self.compose("exec", "-T", "redis", "sh", "-c", _REDIS_WITH_AUTH, "redis-cli", *argv)
