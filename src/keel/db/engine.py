"""Engine and session configuration per DB_TYPE (advanced-alchemy), and the startup connect."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path
from typing import Any

from advanced_alchemy.config import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from loguru import logger
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool, StaticPool

from keel.config import ConfigError, Settings
from keel.db.base import metadata
from keel.db.errors import DatabaseConnectError, connect_error
from keel.db.url import DbTarget, database_target, sqlite_path

# Migrations use this version table (advanced-alchemy's default name, spelled out).
VERSION_TABLE = "alembic_versions"
MIGRATIONS_DIR = "keel.db:migrations"


def _connect_args(target: DbTarget, timeout: float) -> dict[str, Any]:
    if target.type == "postgresql":
        # Fail a dead connect fast; jit off: short OLTP queries pay for JIT and never win.
        return {"timeout": timeout, "server_settings": {"jit": "off"}}
    if target.type == "mysql":
        return {"connect_timeout": timeout}
    if target.type == "oracle":
        return {"tcp_connect_timeout": timeout}
    return {"timeout": timeout}  # sqlite: seconds to wait on a locked database


def engine_config(settings: Settings, target: DbTarget) -> EngineConfig:
    db = settings.db
    common: dict[str, Any] = {
        "connect_args": _connect_args(target, db.connect_timeout),
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
    return SQLAlchemyAsyncConfig(**config_kwargs(settings, one_shot=one_shot))


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 5.0) -> float:
    """Exponential backoff with jitter (attempt counts from 1)."""
    delay = min(cap, base * 2.0 ** (attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not crypto


async def connect_with_retries(
    engine: AsyncEngine, target: DbTarget, retries: int
) -> DatabaseConnectError | None:
    """Connect, retrying only what waiting can fix. Returns the final error, or None when ok."""
    attempts = max(1, retries)
    error: DatabaseConnectError | None = None
    for attempt in range(1, attempts + 1):
        try:
            await ping(engine)
        except Exception as exc:  # noqa: BLE001 - classified below
            error = connect_error(target, exc, attempt)
            if not error.cause.retryable or attempt == attempts:
                return error
            delay = backoff_delay(attempt)
            logger.warning(
                "database not reachable yet ({}); retry {}/{} in {:.1f}s",
                target.describe(),
                attempt,
                attempts - 1,
                delay,
            )
            await asyncio.sleep(delay)
        else:
            return None
    return error
