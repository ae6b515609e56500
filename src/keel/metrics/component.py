"""Metrics as a component: the HTTP response observer and a resource watching the DB pool."""

from __future__ import annotations

from typing import Any

from litestar.datastructures import State

from keel.components import Component
from keel.config import Settings


class PoolWatch:
    name = "metrics"

    def __init__(self) -> None:
        self._sampler: Any = None

    async def start(self, state: State) -> None:
        from keel.metrics.db_pool import PoolSampler

        engine = state.get("db_engine")
        if engine is not None:
            self._sampler = PoolSampler(engine)
            self._sampler.start()

    async def stop(self) -> None:
        if self._sampler is not None:
            await self._sampler.stop()


def component(settings: Settings) -> Component:
    if not settings.metrics.enabled:
        return Component(name="metrics")
    from keel.metrics.http import STATS

    return Component(name="metrics", resources=[PoolWatch()], response_observers=[STATS])
