"""Re-enqueue jobs whose message may be lost: the database, not the stream, is the truth.

A job still ``queued`` after ``WORKER_REQUEUE_AFTER`` gets a fresh message. That covers a Redis
that lost its data (restart without persistence, failover) and an API that died between its
insert and its enqueue. Duplicate messages are harmless (the runner claims each job once). One
worker sweeps at a time (a Redis lock), and a job is re-sent at most once per
``WORKER_REQUEUE_AFTER``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

from litestar.datastructures import State
from loguru import logger
from redis.asyncio import Redis

from keel.config import Settings
from keel.domain.jobs.services import stale_queued
from keel.tasks.runner import Enqueue


class SweeperResource:
    name = "sweeper"

    def __init__(self, settings: Settings, enqueue: Enqueue) -> None:
        self._settings = settings
        self._enqueue = enqueue
        self._task: asyncio.Task[None] | None = None
        self._state: State | None = None

    async def sweep(self) -> int:
        assert self._state is not None
        redis: Redis | None = self._state.get("redis")
        if redis is None:
            return 0
        worker = self._settings.worker
        prefix = self._settings.redis.key_prefix
        window_ms = int(worker.requeue_after * 1000)
        if not await redis.set(
            f"{prefix}:sweeper:lock", "1", nx=True, px=max(1000, int(worker.sweep_interval * 1000))
        ):
            return 0  # another worker sweeps this round
        sent = 0
        for job_id, queue in await stale_queued(
            self._state.db_engine, dt.timedelta(seconds=worker.requeue_after)
        ):
            if await redis.set(f"{prefix}:sweeper:sent:{job_id}", "1", nx=True, px=window_ms):
                await self._enqueue(job_id, queue)
                sent += 1
        if sent:
            logger.warning(
                "re-enqueued {} job(s) queued for over {:g}s", sent, worker.requeue_after
            )
        return sent

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.worker.sweep_interval)
            try:
                await self.sweep()
            except Exception as exc:  # noqa: BLE001 - DB or Redis hiccup: next round retries
                logger.warning("sweeping stale jobs failed: {}", exc)

    async def start(self, state: State) -> None:
        self._state = state
        self._task = asyncio.create_task(self._loop(), name="sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
