"""The process's one way to the database: one engine and one session maker, as a resource.

Everything that talks to the database in a process uses this object: the jobs service and the
runner (Core statements on :attr:`Database.engine`; on PostgreSQL the jobs service's hottest
statements on :attr:`Database.direct`, the driver's own pool: keel.db.direct), the users and
API-key services (ORM sessions from :attr:`Database.sessions`), and advanced-alchemy's
``SQLAlchemyPlugin``, which is handed the same engine and session maker (``keel.db.component``)
instead of building its own.

Start-up policy (documented in docs/operations): a wrong password or a missing database ends
the start with one line (host, port, database, cause): waiting cannot fix those. An unreachable
server is retried ``DB_CONNECT_RETRIES`` times with backoff; then, unless
``DB_REQUIRED_AT_START=true``, the process keeps running: ``/health/live`` answers,
``/health/ready`` names the database until it is back, and the pool connects on its own then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from keel.config import Settings
from keel.db.direct import DirectPool
from keel.db.engine import connect_args, connect_with_retries, ping, sqlalchemy_config
from keel.db.migrate import check_at_head
from keel.db.url import DbTarget, database_target
from keel.lifecycle import Resource


class Database:
    """The engine (created here, connected lazily) and its session maker."""

    name = "database"
    depends_on: Sequence[Resource] = ()

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.target: DbTarget = database_target(settings)
        config = sqlalchemy_config(settings)
        self.engine: AsyncEngine = config.get_engine()
        self.sessions = cast("async_sessionmaker[AsyncSession]", config.create_session_maker())
        db = settings.db
        # PostgreSQL: the hot statements' driver-level pool (keel.db.direct); None elsewhere.
        self.direct: DirectPool | None = (
            DirectPool(
                self.engine, connect_args(self.target, db.connect_timeout), db.direct_pool_size
            )
            if self.target.type == "postgresql" and db.direct_pool_size > 0
            else None
        )

    async def start(self) -> None:
        if self.direct is not None:
            await self.direct.open()  # connects nothing yet (see keel.db.direct)
        error = await connect_with_retries(
            self.engine, self.target, self._settings.db.connect_retries
        )
        if error is None:
            logger.info("database {} reachable", self.target.describe())
            return
        if self._settings.db.required_at_start or not error.cause.retryable:
            raise error
        logger.error("{}; continuing: /health/ready reports the database until it is back", error)

    async def stop(self) -> None:
        if self.direct is not None:
            await self.direct.close()
        await self.engine.dispose()

    async def ping(self) -> None:
        await ping(self.engine)

    async def check_migrations(self) -> None:
        await check_at_head(self.engine)
