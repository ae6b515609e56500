"""The broker in the API process: enqueue jobs (and, locally, run them in-process).

``REDIS_BACKEND=memory`` (``make run``): an in-process broker runs each job right in the API
process, through the same runner a worker uses. Otherwise the API only publishes messages;
``keel worker`` processes run them.
"""

from __future__ import annotations

import asyncio
import contextlib

from litestar.datastructures import State
from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import RedisError
from taskiq import AsyncBroker, InMemoryBroker

from keel.components import Component, ReadinessCheck
from keel.config import Settings
from keel.domain.jobs.kinds import QUEUES
from keel.lifecycle import describe_exception
from keel.tasks import jobs_task
from keel.tasks.broker import CONSUMER_GROUP, build_broker, stream_name
from keel.tasks.runner import JobRunner

LOCAL_WORKER_ID = "local"


class BrokerResource:
    """Publishes ``state.broker`` and ``state.enqueue(job_id, queue)``."""

    name = "broker"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.broker: AsyncBroker | None = None

    async def start(self, state: State) -> None:
        broker = build_broker(self._settings, QUEUES)
        self.broker = broker
        enqueue = jobs_task.make_enqueue(broker, self._settings)
        if isinstance(broker, InMemoryBroker):
            broker.state[jobs_task.RUNNER_STATE_KEY] = JobRunner(
                self._settings, state.db_engine, None, LOCAL_WORKER_ID, enqueue
            )
        try:
            await broker.startup()
        except (RedisError, OSError) as exc:
            if self._settings.redis.required_at_start:
                raise
            logger.error("broker not ready ({}); /health/ready reports it", describe_exception(exc))
        state.broker = broker
        state.enqueue = enqueue

    async def stop(self) -> None:
        if self.broker is None:
            return
        if isinstance(self.broker, InMemoryBroker):
            # In-process jobs are in flight in this process: let them finish in the budget.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.broker.wait_all(), self._settings.worker.shutdown_timeout
                )
        await self.broker.shutdown()


def _group_check(settings: Settings) -> ReadinessCheck:
    async def check(state: State) -> None:
        redis: Redis = state.redis
        for queue in QUEUES:
            stream = stream_name(settings, queue)
            groups = await redis.xinfo_groups(stream)
            names = {
                g["name"].decode() if isinstance(g["name"], bytes) else g["name"] for g in groups
            }
            if CONSUMER_GROUP not in names:
                raise RuntimeError(f"consumer group {CONSUMER_GROUP} missing on {stream}")

    return ReadinessCheck("broker", check)


def component(settings: Settings) -> Component:
    readiness = [] if settings.redis.backend == "memory" else [_group_check(settings)]
    return Component(
        name="broker", api_only_resources=[BrokerResource(settings)], readiness=readiness
    )
