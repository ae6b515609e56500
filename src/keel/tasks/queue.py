"""The job queue over Taskiq: publish job messages (and, locally, run them in-process).

``REDIS_BACKEND=memory`` (``make run``): an in-process broker runs each job right in the API
process, through the same runner a worker uses. Otherwise the API only publishes messages;
``keel worker`` processes run them. In a worker the queue wraps the broker Taskiq drives
(Taskiq starts and stops it), so retries and the sweeper publish the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from loguru import logger
from redis.exceptions import RedisError
from taskiq import AsyncBroker, InMemoryBroker

from keel.components import Component, ReadinessCheck
from keel.config import Settings
from keel.db.database import Database
from keel.domain.jobs.kinds import QUEUES
from keel.domain.jobs.runner import JobRunner
from keel.lifecycle import Resource
from keel.resilience import describe_exception
from keel.tasks import jobs_task
from keel.tasks.broker import CONSUMER_GROUP, build_broker, stream_name

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from keel.runtime import Runtime

LOCAL_WORKER_ID = "local"


class BrokerQueue:
    """``enqueue(job_id, queue)`` on a Taskiq broker: its own (API) or Taskiq's (worker)."""

    name = "broker"

    def __init__(
        self, settings: Settings, database: Database, broker: AsyncBroker | None = None
    ) -> None:
        self._settings = settings
        self._database = database
        self.depends_on: Sequence[Resource] = (database,)
        # A broker handed in belongs to Taskiq's worker, which starts and stops it.
        self._owns_broker = broker is None
        self.broker = build_broker(settings, QUEUES) if broker is None else broker
        self._enqueue = jobs_task.make_enqueue(self.broker, settings)

    async def enqueue(self, job_id: int, queue: str) -> None:
        await self._enqueue(job_id, queue)

    async def start(self) -> None:
        if not self._owns_broker:
            return
        broker = self.broker
        if isinstance(broker, InMemoryBroker):
            broker.state[jobs_task.RUNNER_STATE_KEY] = JobRunner(
                self._settings, self._database.engine, None, LOCAL_WORKER_ID, self._enqueue
            )
        try:
            await broker.startup()
        except (RedisError, OSError) as exc:
            if self._settings.redis.required_at_start:
                raise
            logger.error("broker not ready ({}); /health/ready reports it", describe_exception(exc))

    async def stop(self) -> None:
        if not self._owns_broker:
            return
        if isinstance(self.broker, InMemoryBroker):
            # In-process jobs are in flight in this process: let them finish in the budget.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.broker.wait_all(), self._settings.worker.shutdown_timeout
                )
        await self.broker.shutdown()


def _group_check(settings: Settings, redis: Redis) -> ReadinessCheck:
    async def check() -> None:
        for queue in QUEUES:
            stream = stream_name(settings, queue)
            groups = await redis.xinfo_groups(stream)
            names = {
                g["name"].decode() if isinstance(g["name"], bytes) else g["name"] for g in groups
            }
            if CONSUMER_GROUP not in names:
                raise RuntimeError(f"consumer group {CONSUMER_GROUP} missing on {stream}")

    return ReadinessCheck("broker", check)


def component(runtime: Runtime) -> Component:
    if runtime.redis is None:
        return Component(name="broker")
    return Component(
        name="broker", readiness=[_group_check(runtime.settings, runtime.redis.client)]
    )
