"""The worker process: the broker Taskiq's worker imports, and the resources around it.

``keel worker`` puts its choices in the environment (as ``keel serve`` does for Granian) and
hands ``keel.tasks.worker:worker_broker`` to Taskiq's process manager; each worker process
(forked or spawned) calls it once and loads the settings from that environment. On
``WORKER_STARTUP`` the process starts the same runtime the API starts (database, Redis, ids,
the job queue over this broker), its heartbeat, the sweeper and the job runner; on
``WORKER_SHUTDOWN`` (after in-flight jobs finished) it stops them in reverse.
"""

from __future__ import annotations

import gc
import logging

from loguru import logger
from taskiq import AsyncBroker, TaskiqEvents, TaskiqState

from keel.config import Settings, load
from keel.db.database import Database
from keel.domain.jobs.runner import JobRunner
from keel.domain.jobs.sweeper import SweeperResource
from keel.heartbeats import new_worker_id
from keel.lifecycle import ResourceStack
from keel.runtime import build_runtime
from keel.tasks import jobs_task
from keel.tasks.broker import KeelStreamBroker, build_broker
from keel.tasks.heartbeat import HeartbeatResource
from keel.tasks.queue import BrokerQueue


class WorkerProcess:
    def __init__(self, settings: Settings, broker: AsyncBroker, worker_id: str) -> None:
        self.settings = settings
        self.broker = broker
        self.worker_id = worker_id

        def queue(settings: Settings, database: Database) -> BrokerQueue:
            return BrokerQueue(settings, database, broker=broker)

        self.runtime = build_runtime(settings, queue)
        self.runner: JobRunner | None = None
        heartbeat = HeartbeatResource(
            settings, self.runtime.redis, worker_id, list(settings.worker.queues), self._in_flight
        )
        sweeper = SweeperResource(
            settings, self.runtime.database, self.runtime.redis, self.runtime.jobs_queue.enqueue
        )
        self.stack = ResourceStack([*self.runtime.resources, heartbeat, sweeper])

    def _in_flight(self) -> int:
        return self.runner.in_flight if self.runner is not None else 0

    async def startup(self, _: TaskiqState) -> None:
        logger.bind(lifecycle=True).info(
            "worker {} starting (queues: {})",
            self.worker_id,
            ", ".join(self.settings.worker.queues),
        )
        await self.stack.start()
        redis = self.runtime.redis
        self.runner = JobRunner(
            self.settings,
            engine=self.runtime.database.engine,
            redis=redis.client if redis is not None else None,
            worker_id=self.worker_id,
            enqueue=self.runtime.jobs_queue.enqueue,
        )
        self.broker.state[jobs_task.RUNNER_STATE_KEY] = self.runner
        gc.freeze()  # as the API does after start-up (keel.app): full collections skip it all

    async def shutdown(self, _: TaskiqState) -> None:
        logger.bind(lifecycle=True).info("worker {} stopping", self.worker_id)
        await self.stack.stop()


def worker_broker() -> AsyncBroker:
    """Factory Taskiq calls in each worker process (settings from the environment)."""
    from keel.logging import configure_logging

    settings = load()
    configure_logging(settings, process="worker")
    # Taskiq logs a line per job at INFO: skip building those records when they'd be dropped.
    level = settings.log.level if settings.log.level != "TRACE" else "DEBUG"
    logging.getLogger("taskiq").setLevel(level)
    worker_id = new_worker_id()
    broker = build_broker(settings, settings.worker.queues)
    if isinstance(broker, KeelStreamBroker):
        broker.consumer_name = worker_id
    jobs_task.register(broker)
    process = WorkerProcess(settings, broker, worker_id)
    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, process.startup)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, process.shutdown)
    return broker
