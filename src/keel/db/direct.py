"""Straight-to-the-driver statements for the hottest paths, on PostgreSQL (asyncpg's own pool).

A read by primary key through SQLAlchemy costs ~85 us of CPU per request in this process
(engine connect, isolation-level setup, execution context, result proxy, pool check-in) on top
of the driver's own work: more than the rest of the request. The few statements that run on
every hot request (``keel.domain.jobs.services``) run here instead, as plain SQL on an asyncpg
pool, and every other statement stays on SQLAlchemy.

The pool connects lazily (``min_size=0``): nothing changes at start-up, where
:class:`~keel.db.database.Database` owns the reachability policy, and a server that comes back
after an outage is simply connected to again. It uses the connection parameters SQLAlchemy's
own asyncpg dialect derives from the same URL (host, port, credentials, TLS options) plus the
engine's ``connect_args``, so both pools reach the same server the same way.
``DB_DIRECT_POOL_SIZE=0`` turns it off (every statement then goes through SQLAlchemy).
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement


def asyncpg_sql(statement: ClauseElement) -> str:
    """A Core statement as asyncpg SQL (``$1``, ``$2``... in the order its bind parameters
    appear): one source for the SQLAlchemy path and the direct one. Compiled once, at import."""
    return str(statement.compile(dialect=asyncpg_dialect.dialect()))  # type: ignore[no-untyped-call]


def _encode_json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


async def _json_codecs(connection: Any) -> None:
    # The same JSON values SQLAlchemy's dialect returns, decoded by msgspec (C) instead of json.
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, encoder=_encode_json, decoder=msgspec.json.decode, schema="pg_catalog"
        )


async def _keep_session(connection: Any) -> None:
    """Release without asyncpg's default reset query (``RESET ALL; UNLISTEN *; ...``), a round
    trip per statement. Nothing here changes session state: each statement is one autocommitted
    query, with no SET, LISTEN, advisory lock, cursor or open transaction to undo."""


class DirectPool:
    """An asyncpg pool of at most ``size`` connections to the engine's server."""

    def __init__(self, engine: AsyncEngine, connect_args: dict[str, Any], size: int) -> None:
        _, params = engine.dialect.create_connect_args(engine.url)
        self._params: dict[str, Any] = {**params, **connect_args}
        self._size = size
        self._pool: Any = None

    async def open(self) -> Any:
        """The pool, created on the first call (no connection is made)."""
        import asyncpg  # type: ignore[import-untyped]

        if self._pool is None:
            # min_size=0: creating the pool connects nothing (and cannot fail on a down server)
            # and there is no await before the assignment, so concurrent first calls share it.
            pool = asyncpg.create_pool(
                min_size=0,
                max_size=self._size,
                init=_json_codecs,
                reset=_keep_session,
                **self._params,
            )
            self._pool = pool
            await pool
        return self._pool

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        pool = self._pool or await self.open()
        return await pool.fetchrow(sql, *args)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
