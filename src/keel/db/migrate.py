"""The locked migrator behind ``keel migrate``, and the "is the schema at head" check.

Concurrent migrators (several replicas each running ``keel migrate``) serialise on a database
lock: a PostgreSQL advisory lock, MySQL/MariaDB ``GET_LOCK``, or a file lock next to the SQLite
file. The one holding the lock upgrades; the others then find the schema at head and do nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from loguru import logger
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keel.config import Settings
from keel.db.engine import MIGRATIONS_DIR, VERSION_TABLE, connect_with_retries, one_shot_engine
from keel.db.url import DbTarget, database_target, sqlite_path

# Any fixed 64-bit number; every Keel migrator uses the same one.
PG_LOCK_KEY = 0x6B65656C_6D696772  # "keelmigr"
MYSQL_LOCK_NAME = "keel.migrate"
_POLL = 0.2


class MigrationLockTimeoutError(Exception):
    pass


@dataclass(frozen=True)
class MigrationOutcome:
    before: str | None
    after: str | None
    applied: tuple[str, ...]
    waited_s: float

    def describe(self) -> str:
        if not self.applied:
            return f"database already at head ({self.after}); nothing to do"
        return (
            f"applied {len(self.applied)} migration(s): {', '.join(self.applied)} "
            f"({self.before or 'empty'} -> {self.after})"
        )


def alembic_config() -> AlembicConfig:
    # Plain Alembic (not advanced-alchemy's wrapper, which costs seconds to import); the
    # environment (migrations/env.py) reads the version table name and the connection from here.
    config = AlembicConfig()
    config.set_main_option("script_location", MIGRATIONS_DIR)
    config.version_table_name = VERSION_TABLE  # type: ignore[attr-defined]
    return config


@functools.cache
def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str | None:
    return script_directory().get_current_head()


def _current_revision(connection: Connection) -> str | None:
    # MigrationContext announces itself at INFO ("Context impl ..."); /health/ready asks this
    # every few seconds, so keep that line out of the logs here (keel migrate still shows it).
    migration_logger = logging.getLogger("alembic.runtime.migration")
    level = migration_logger.level
    migration_logger.setLevel(logging.WARNING)
    try:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    finally:
        migration_logger.setLevel(level)
    return context.get_current_revision()


def _revisions_between(before: str | None, after: str | None) -> tuple[str, ...]:
    if before == after or after is None:
        return ()
    scripts = script_directory()
    path = [rev.revision for rev in scripts.iterate_revisions(after, before or "base")]
    return tuple(reversed(path))


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision)


def _is_known(revision: str) -> bool:
    try:
        return script_directory().get_revision(revision) is not None
    except (RevisionError, CommandError):  # ScriptDirectory wraps the first in the second
        return False


async def check_at_head(engine: AsyncEngine) -> None:
    """Raise when the database is behind the code's migrations.

    A revision this code does not know is a newer release's (rolling updates migrate first, then
    replace the old pods): migrations are written backward compatible (expand, then contract a
    release later), so the old pods stay ready instead of all leaving the load balancer at once.
    """
    current = await current_revision(engine)
    head = head_revision()
    if current == head or (current is not None and not _is_known(current)):
        return
    raise RuntimeError(
        f"database schema at {current or 'empty'}, code expects {head}; run `keel migrate`"
    )


@contextlib.asynccontextmanager
async def _file_lock(path: Path, wait_s: float) -> AsyncIterator[None]:
    lock_path = path.with_name(path.name + ".migrate.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise MigrationLockTimeoutError(
                        f"{lock_path} held for over {wait_s:g}s"
                    ) from None
                await asyncio.sleep(_POLL)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


async def _db_lock(connection: AsyncConnection, target: DbTarget, wait_s: float) -> None:
    """Take the lock on ``connection``; it is held until the connection's transaction ends
    (PostgreSQL) or the lock is released / the connection closes (MySQL)."""
    deadline = time.monotonic() + wait_s
    if target.type == "postgresql":
        while True:
            got = await connection.scalar(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY}
            )
            if got:
                return
            if time.monotonic() > deadline:
                raise MigrationLockTimeoutError(f"advisory lock held for over {wait_s:g}s")
            await asyncio.sleep(_POLL)
    if target.type == "mysql":
        got = await connection.scalar(
            text("SELECT GET_LOCK(:name, :timeout)"),
            {"name": MYSQL_LOCK_NAME, "timeout": max(1, int(wait_s))},
        )
        if got != 1:
            raise MigrationLockTimeoutError(
                f"GET_LOCK({MYSQL_LOCK_NAME}) held for over {wait_s:g}s"
            )
        return
    if target.type == "sqlite":
        return  # the file lock next to the database file is held by the caller
    # Oracle: DBMS_LOCK needs a grant most accounts lack; run one migrator there (no server
    # to test against here).
    logger.warning("no migration lock on {}: run a single migrator", target.type)


async def _release_db_lock(connection: AsyncConnection, target: DbTarget) -> None:
    if target.type == "mysql":
        await connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": MYSQL_LOCK_NAME})


async def _upgrade_locked(
    connection: AsyncConnection, revision: str
) -> tuple[str | None, str | None]:
    def upgrade(sync_connection: Connection) -> tuple[str | None, str | None]:
        before = _current_revision(sync_connection)
        if before != head_revision() or revision != "head":
            config = alembic_config()
            config.attributes["connection"] = sync_connection
            alembic_command.upgrade(config, revision)
        return before, _current_revision(sync_connection)

    return await connection.run_sync(upgrade)


async def migrate(settings: Settings, revision: str = "head") -> MigrationOutcome:
    """Upgrade the database to ``revision`` under the migration lock."""
    target = database_target(settings)
    engine = one_shot_engine(settings, target)
    try:
        error = await connect_with_retries(engine, target, settings.db.connect_retries)
        if error is not None:
            raise error
        timeout = settings.db.migrate_lock_timeout
        began = time.monotonic()
        path = sqlite_path(target)
        file_lock = _file_lock(path, timeout) if path is not None else contextlib.nullcontext()
        async with file_lock, engine.connect() as connection:
            await _db_lock(connection, target, timeout)
            waited = time.monotonic() - began
            try:
                before, after = await _upgrade_locked(connection, revision)
                await connection.commit()
            finally:
                await _release_db_lock(connection, target)
        return MigrationOutcome(before, after, _revisions_between(before, after), waited)
    finally:
        await engine.dispose()
