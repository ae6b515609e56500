"""Metrics as a component: the HTTP response observer and a resource watching the DB pool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from keel.components import Component

if TYPE_CHECKING:
    from keel.db.database import Database
    from keel.lifecycle import Resource
    from keel.runtime import Runtime


class PoolWatch:
    """Samples the runtime's database pool into the DB pool gauges while the process runs."""

    name = "metrics"

    def __init__(self, database: Database) -> None:
        self._database = database
        self.depends_on: Sequence[Resource] = (database,)
        self._sampler: Any = None

    async def start(self) -> None:
        from keel.metrics.db_pool import PoolSampler

        self._sampler = PoolSampler(self._database.engine)
        self._sampler.start()

    async def stop(self) -> None:
        if self._sampler is not None:
            await self._sampler.stop()


def component(runtime: Runtime) -> Component:
    if not runtime.settings.metrics.enabled:
        return Component(name="metrics")
    from keel.metrics.http import STATS

    return Component(
        name="metrics", resources=[PoolWatch(runtime.database)], response_observers=[STATS]
    )
