"""The worker process: the broker Taskiq's worker imports, and the resources around it.

``keel worker`` stores the loaded settings in :data:`_SETTINGS` and hands
``keel.tasks.worker:worker_broker`` to Taskiq's process manager; each worker process (forked)
calls it once. On ``WORKER_STARTUP`` the process starts the same component resources the API
starts (database, Redis, ids, ...), its heartbeat and the job runner; on ``WORKER_SHUTDOWN``
(after in-flight jobs finished) it stops them in reverse.
"""

from __future__ import annotations

import logging

from litestar.datastructures import State
from loguru import logger
from taskiq import AsyncBroker, TaskiqEvents, TaskiqState

from keel.components import build_components
from keel.config import Settings, load
from keel.lifecycle import ResourceStack
from keel.tasks import jobs_task
from keel.tasks.broker import KeelStreamBroker, build_broker
from keel.tasks.heartbeat import HeartbeatResource, new_worker_id
from keel.tasks.runner import JobRunner
from keel.tasks.sweeper import SweeperResource

_SETTINGS: Settings | None = None


def set_settings(settings: Settings) -> None:
    global _SETTINGS  # noqa: PLW0603 - handed from `keel worker` to the forked processes
    _SETTINGS = settings


class WorkerRuntime:
    def __init__(self, settings: Settings, broker: AsyncBroker, worker_id: str) -> None:
        self.settings = settings
        self.broker = broker
        self.worker_id = worker_id
        self.state = State()
        self.runner: JobRunner | None = None
        resources = [r for c in build_components(settings) for r in c.resources]
        self.heartbeat = HeartbeatResource(
            settings, worker_id, list(settings.worker.queues), self._in_flight
        )
        self.sweeper = SweeperResource(settings, jobs_task.make_enqueue(broker, settings))
        self.stack = ResourceStack([*resources, self.heartbeat, self.sweeper])

    def _in_flight(self) -> int:
        return self.runner.in_flight if self.runner is not None else 0

    async def startup(self, _: TaskiqState) -> None:
        logger.bind(lifecycle=True).info(
            "worker {} starting (queues: {})",
            self.worker_id,
            ", ".join(self.settings.worker.queues),
        )
        await self.stack.start(self.state)
        self.runner = JobRunner(
            self.settings,
            engine=self.state.db_engine,
            redis=self.state.get("redis"),
            worker_id=self.worker_id,
            enqueue=jobs_task.make_enqueue(self.broker, self.settings),
        )
        self.broker.state[jobs_task.RUNNER_STATE_KEY] = self.runner

    async def shutdown(self, _: TaskiqState) -> None:
        logger.bind(lifecycle=True).info("worker {} stopping", self.worker_id)
        await self.stack.stop()


def worker_broker() -> AsyncBroker:
    """Factory Taskiq calls in each worker process."""
    from keel.logging import configure_logging

    settings = _SETTINGS if _SETTINGS is not None else load()
    configure_logging(settings, process="worker")
    # Taskiq logs a line per job at INFO: skip building those records when they'd be dropped.
    level = settings.log.level if settings.log.level != "TRACE" else "DEBUG"
    logging.getLogger("taskiq").setLevel(level)
    worker_id = new_worker_id()
    broker = build_broker(settings, settings.worker.queues)
    if isinstance(broker, KeelStreamBroker):
        broker.consumer_name = worker_id
    jobs_task.register(broker)
    runtime = WorkerRuntime(settings, broker, worker_id)
    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, runtime.startup)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, runtime.shutdown)
    return broker
