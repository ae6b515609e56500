"""The database as a component: readiness checks, and advanced-alchemy's Litestar plugin
(the request-scoped ``db_session`` dependency) over the process's one :class:`Database`."""

from __future__ import annotations

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig as LitestarDbConfig
from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin

from keel.components import Component, ReadinessCheck
from keel.db.base import metadata
from keel.runtime import Runtime


def component(runtime: Runtime) -> Component:
    database = runtime.database
    config = LitestarDbConfig(
        # The plugin shares the runtime's engine and session maker (it builds none of its own).
        engine_instance=database.engine,
        session_maker=database.sessions,
        metadata=metadata,
        # Request-scoped `db_session` dependency: commit on 2xx, roll back otherwise.
        before_send_handler="autocommit",
        set_default_exception_handler=False,
    )
    return Component(
        name="database",
        readiness=[
            ReadinessCheck("database", database.ping),
            ReadinessCheck("migrations", database.check_migrations),
        ],
        plugins=[SQLAlchemyPlugin(config=config)],
    )
