"""The database as a component: engine resource, session dependency, readiness checks.

Start-up policy (documented in docs/operations): a wrong password or a missing database ends
the start with one line (host, port, database, cause): waiting cannot fix those. An unreachable
server is retried ``DB_CONNECT_RETRIES`` times with backoff; then, unless
``DB_REQUIRED_AT_START=true``, the process keeps running: ``/health/live`` answers,
``/health/ready`` names the database until it is back, and the pool connects on its own then.
"""

from __future__ import annotations

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig as LitestarDbConfig
from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar.datastructures import State
from loguru import logger
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from keel.components import Component, ReadinessCheck
from keel.config import Settings
from keel.db.engine import config_kwargs, connect_with_retries, ping
from keel.db.migrate import check_at_head
from keel.db.url import DbTarget, database_target


class DatabaseResource:
    """Publishes ``state.db_engine`` and ``state.db_sessions`` (an ``async_sessionmaker``)."""

    name = "database"

    def __init__(self, settings: Settings, config: LitestarDbConfig, target: DbTarget) -> None:
        self._settings = settings
        self.config = config
        self.target = target
        self.engine: AsyncEngine | None = None

    async def start(self, state: State) -> None:
        engine = self.config.get_engine()
        self.engine = engine
        state.db_engine = engine
        state.db_sessions = async_sessionmaker(engine, expire_on_commit=False)
        state.db_target = self.target
        error = await connect_with_retries(engine, self.target, self._settings.db.connect_retries)
        if error is None:
            logger.info("database {} reachable", self.target.describe())
            return
        if self._settings.db.required_at_start or not error.cause.retryable:
            raise error
        logger.error("{}; continuing: /health/ready reports the database until it is back", error)

    async def stop(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()


async def _check_database(state: State) -> None:
    await ping(state.db_engine)


async def _check_migrations(state: State) -> None:
    await check_at_head(state.db_engine)


def component(settings: Settings) -> Component:
    target = database_target(settings)
    config = LitestarDbConfig(
        **config_kwargs(settings),
        # Request-scoped `db_session` dependency: commit on 2xx, roll back otherwise.
        before_send_handler="autocommit",
        set_default_exception_handler=False,
    )
    return Component(
        name="database",
        resources=[DatabaseResource(settings, config, target)],
        readiness=[
            ReadinessCheck("database", _check_database),
            ReadinessCheck("migrations", _check_migrations),
        ],
        plugins=[SQLAlchemyPlugin(config=config)],
    )
