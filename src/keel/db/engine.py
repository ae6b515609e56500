"""Engine and session configuration per DB_TYPE (advanced-alchemy), and the startup connect."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool, StaticPool

from keel.config import ConfigError, Settings
from keel.db.base import metadata
from keel.db.errors import DatabaseConnectError, classify, connect_error
from keel.db.url import DbTarget, database_target, sqlite_path
from keel.resilience import retry_until_ready

if TYPE_CHECKING:
    # advanced-alchemy is imported where its configs are built: importing it costs seconds,
    # and the operator commands only need connect_args/connect_with_retries from here.
    from advanced_alchemy.config import EngineConfig, SQLAlchemyAsyncConfig

# Migrations use this version table (advanced-alchemy's default name, spelled out).
VERSION_TABLE = "alembic_versions"
MIGRATIONS_DIR = "keel.db:migrations"


def connect_args(target: DbTarget, timeout: float) -> dict[str, Any]:
    if target.type == "postgresql":
        # Fail a dead connect fast; jit off: short OLTP queries pay for JIT and never win.
        return {"timeout": timeout, "server_settings": {"jit": "off"}}
    if target.type == "mysql":
        return {"connect_timeout": timeout}
    if target.type == "oracle":
        return {"tcp_connect_timeout": timeout}
    return {"timeout": timeout}  # sqlite: seconds to wait on a locked database


def engine_config(settings: Settings, target: DbTarget) -> EngineConfig:
    from advanced_alchemy.config import EngineConfig

    db = settings.db
    common: dict[str, Any] = {
        "connect_args": connect_args(target, db.connect_timeout),
        "echo": db.echo,
        "hide_parameters": not settings.app.debug,
    }
    if target.type == "sqlite":
        if sqlite_path(target) is None:
            # One shared connection, or every session would see its own empty database.
            return EngineConfig(poolclass=StaticPool, **common)
        return EngineConfig(**common)
    return EngineConfig(
        pool_size=db.pool_size,
        max_overflow=db.max_overflow,
        pool_timeout=int(db.pool_timeout),
        pool_recycle=db.pool_recycle,
        pool_pre_ping=db.pool_pre_ping,
        **common,
    )


class UnusableDatabasePathError(ConfigError):
    """The SQLite file cannot live where DB_DATABASE says (one line, no traceback)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            [f"DB_DATABASE: cannot use {path}: {reason}; point it at a writable directory"],
            header="database path refused",
        )


def prepare_sqlite_directory(path: Path) -> None:
    """Create the file's directory; a path that cannot hold a database is a config error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UnusableDatabasePathError(
            path, f"cannot create {path.parent} ({exc.strerror or exc})"
        ) from None
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise UnusableDatabasePathError(path, "the file is not readable and writable")
    if not path.exists() and not os.access(path.parent, os.W_OK | os.X_OK):
        raise UnusableDatabasePathError(path, f"{path.parent} is not writable")


def config_kwargs(settings: Settings, *, one_shot: bool = False) -> dict[str, Any]:
    """Arguments of advanced-alchemy's ``SQLAlchemyAsyncConfig`` (plain or Litestar flavour).

    ``one_shot`` (the migrator) opens no pool: a single connection is used and closed.
    """
    from advanced_alchemy.config import AlembicAsyncConfig, AsyncSessionConfig, EngineConfig

    target = database_target(settings)
    config = engine_config(settings, target)
    if one_shot and target.type != "sqlite":
        config = EngineConfig(
            poolclass=NullPool,
            connect_args=config.connect_args,
            echo=config.echo,
            hide_parameters=config.hide_parameters,
        )
    if target.type == "sqlite":
        path = sqlite_path(target)
        if path is not None:
            prepare_sqlite_directory(path)
    return {
        "connection_string": target.url.render_as_string(hide_password=False),
        "engine_config": config,
        "session_config": AsyncSessionConfig(expire_on_commit=False),
        "metadata": metadata,
        "alembic_config": AlembicAsyncConfig(
            script_location=MIGRATIONS_DIR,
            version_table_name=VERSION_TABLE,
            script_config="",
        ),
    }


def sqlalchemy_config(settings: Settings, *, one_shot: bool = False) -> SQLAlchemyAsyncConfig:
    """The plain advanced-alchemy config (worker, migrator, tests)."""
    from advanced_alchemy.config import SQLAlchemyAsyncConfig

    return SQLAlchemyAsyncConfig(**config_kwargs(settings, one_shot=one_shot))


def one_shot_engine(settings: Settings, target: DbTarget) -> AsyncEngine:
    """A pool-less engine for one command (``keel migrate``, ``keel users …``).

    Plain SQLAlchemy, not advanced-alchemy's config: these commands must start in about a second.
    An in-memory SQLite keeps its single connection (it would be a new, empty database otherwise).
    """
    from sqlalchemy.ext.asyncio import create_async_engine

    path = sqlite_path(target)
    if path is not None:
        prepare_sqlite_directory(path)  # an unusable path is one ConfigError line, exit 2
    memory = target.type == "sqlite" and path is None
    return create_async_engine(
        target.url.render_as_string(hide_password=False),
        connect_args=connect_args(target, settings.db.connect_timeout),
        poolclass=StaticPool if memory else NullPool,
        echo=settings.db.echo,
        hide_parameters=not settings.app.debug,
    )


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def connect_with_retries(
    engine: AsyncEngine, target: DbTarget, retries: int
) -> DatabaseConnectError | None:
    """Connect, retrying only what waiting can fix. Returns the final error, or None when ok."""
    failure = await retry_until_ready(
        lambda: ping(engine),
        attempts=retries,
        retryable=lambda exc: classify(exc).retryable,
        waiting=f"database not reachable yet ({target.describe()})",
    )
    if failure is None:
        return None
    exc, attempt = failure
    return connect_error(target, exc, attempt)
