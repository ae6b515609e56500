"""Alembic environment for Keel's migrations (run by ``keel migrate`` or advanced-alchemy's CLI).

``keel migrate`` passes an open connection that already holds the migration lock in
``config.attributes["connection"]``; other callers get a connection from the config's engine.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from alembic import context
from sqlalchemy.ext.asyncio import AsyncEngine

import keel.models  # noqa: F401 - registers every domain's tables on the metadata
from keel.db.base import metadata

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

config: Any = context.config


def _configure(connection: Connection | None = None) -> None:
    options: dict[str, Any] = {
        "target_metadata": metadata,
        "version_table": getattr(config, "version_table_name", "alembic_versions"),
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        "render_as_batch": True,
        "compare_type": True,
    }
    if connection is None:
        context.configure(url=config.db_url, literal_binds=True, **options)
    else:
        context.configure(connection=connection, **options)


def run_offline() -> None:
    _configure()
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_engine(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
        await connection.commit()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
        return
    asyncio.run(_run_with_engine(config.engine))


if context.is_offline_mode():
    run_offline()
else:
    run_online()
