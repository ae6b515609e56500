"""Re-enqueue jobs whose message may be lost: the database, not the stream, is the truth.

A job still ``queued`` after ``WORKER_REQUEUE_AFTER`` gets a fresh message. That covers a Redis
that lost its data (restart without persistence, failover) and an API that died between its
insert and its enqueue. Duplicate messages are harmless (the runner claims each job once). One
worker sweeps at a time (a Redis lock), and a job is re-sent at most once per
``WORKER_REQUEUE_AFTER``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from loguru import logger

from keel.config import Settings
from keel.db.database import Database
from keel.domain.jobs.transitions import stale_queued
from keel.lifecycle import Resource
from keel.redis_client import RedisResource
from keel.resilience import PeriodicTask
from keel.runtime import Enqueue


class SweeperResource:
    name = "sweeper"

    def __init__(
        self,
        settings: Settings,
        database: Database,
        redis: RedisResource | None,
        enqueue: Enqueue,
    ) -> None:
        self._settings = settings
        self._database = database
        self._redis = redis
        self.depends_on: Sequence[Resource] = tuple(r for r in (database, redis) if r is not None)
        self._enqueue = enqueue
        self._loop = PeriodicTask(
            "sweeper",
            self.sweep,
            lambda: settings.worker.sweep_interval,
            "sweeping stale jobs failed",
        )

    async def sweep(self) -> int:
        if self._redis is None:
            return 0
        redis = self._redis.client
        worker = self._settings.worker
        prefix = self._settings.redis.key_prefix
        window_ms = int(worker.requeue_after * 1000)
        if not await redis.set(
            f"{prefix}:sweeper:lock", "1", nx=True, px=max(1000, int(worker.sweep_interval * 1000))
        ):
            return 0  # another worker sweeps this round
        sent = 0
        for job_id, queue in await stale_queued(
            self._database.engine, dt.timedelta(seconds=worker.requeue_after)
        ):
            if await redis.set(f"{prefix}:sweeper:sent:{job_id}", "1", nx=True, px=window_ms):
                await self._enqueue(job_id, queue)
                sent += 1
        if sent:
            logger.warning(
                "re-enqueued {} job(s) queued for over {:g}s", sent, worker.requeue_after
            )
        return sent

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
