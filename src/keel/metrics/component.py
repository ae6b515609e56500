"""Metrics as two components: the HTTP middleware (listed first, so it is the outermost and
sees auth refusals) and a resource that watches the DB pool (listed after the database)."""

from __future__ import annotations

from litestar.datastructures import State

from keel.components import Component
from keel.config import Settings


class PoolWatch:
    name = "metrics"

    async def start(self, state: State) -> None:
        from keel.metrics.db_pool import watch_pool

        engine = state.get("db_engine")
        if engine is not None:
            watch_pool(engine)

    async def stop(self) -> None:
        return None


def http_component(settings: Settings) -> Component:
    if not settings.metrics.enabled:
        return Component(name="http-metrics")
    from keel.metrics.http import HttpMetricsMiddleware

    return Component(name="http-metrics", middleware=[HttpMetricsMiddleware])


def pool_component(settings: Settings) -> Component:
    resources = [PoolWatch()] if settings.metrics.enabled else []
    return Component(name="pool-metrics", resources=resources)
