"""The process's typed runtime: the resources the API and the worker share, built once.

``Runtime`` replaces a string-keyed bus: each part is a typed attribute, each resource takes
what it needs in its constructor (the ids resource takes the Redis resource, the job queue the
database), and :class:`~keel.lifecycle.ResourceStack` starts them in that dependency order.
The API (:func:`keel.app.create_app`) and the worker (:mod:`keel.tasks.worker`) both build one
with :func:`build_runtime`; they differ only in the job queue they plug in (the API's publishes
and, with ``REDIS_BACKEND=memory``, runs jobs in-process; the worker's wraps the broker Taskiq
drives). Features reach these objects through their constructors or Litestar's ``Provide``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from keel.config import Settings
from keel.db.database import Database
from keel.ids import IdsResource
from keel.lifecycle import Resource
from keel.redis_client import RedisResource

# ``enqueue(job_id, queue)``: one message for that job on that queue.
Enqueue = Callable[[int, str], Awaitable[None]]


class JobQueue(Resource, Protocol):
    """Where job messages go (the broker, as the rest of the process sees it)."""

    async def enqueue(self, job_id: int, queue: str) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Runtime:
    settings: Settings
    database: Database
    redis: RedisResource | None  # None with REDIS_BACKEND=memory
    ids: IdsResource
    jobs_queue: JobQueue

    @property
    def resources(self) -> list[Resource]:
        parts: list[Resource | None] = [self.database, self.redis, self.ids, self.jobs_queue]
        return [part for part in parts if part is not None]


def build_runtime(
    settings: Settings, jobs_queue: Callable[[Settings, Database], JobQueue]
) -> Runtime:
    """The shared resources; ``jobs_queue(settings, database)`` builds the process's queue."""
    database = Database(settings)
    redis = RedisResource(settings) if settings.redis.backend == "redis" else None
    return Runtime(
        settings=settings,
        database=database,
        redis=redis,
        ids=IdsResource(settings, redis),
        jobs_queue=jobs_queue(settings, database),
    )
