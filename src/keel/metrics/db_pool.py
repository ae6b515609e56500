"""Connection-pool gauges of this process, sampled once a second (not per checkout: a shared
metric-file write per checkout and checkin would cost more than the gauge is worth)."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from keel.metrics import families

SAMPLE_INTERVAL_S = 1.0


class PoolSampler:
    def __init__(self, engine: AsyncEngine) -> None:
        pool = engine.sync_engine.pool
        self.pool = pool if isinstance(pool, QueuePool) else None
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        pool = self.pool
        if pool is None:
            return
        families.DB_POOL_CHECKED_OUT.set(pool.checkedout())
        families.DB_POOL_OVERFLOW.set(max(0, pool.overflow()))

    async def _loop(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_INTERVAL_S)

    def start(self) -> None:
        if self.pool is None:
            return  # SQLite's static/null pools have nothing to saturate
        families.DB_POOL_CAPACITY.set(self.pool.size() + self.pool._max_overflow)
        self._task = asyncio.create_task(self._loop(), name="db-pool-metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
