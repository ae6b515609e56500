"""The Taskiq worker and the job runtime."""

from __future__ import annotations

import msgspec


class WorkerSettings(msgspec.Struct, frozen=True, kw_only=True):
    queues: list[str] = msgspec.field(default_factory=lambda: ["default"], name="WORKER_QUEUES")
    processes: int = msgspec.field(default=1, name="WORKER_PROCESSES")
    max_async_tasks: int = msgspec.field(default=10, name="WORKER_MAX_ASYNC_TASKS")
    # Part of the one shutdown budget: in-flight jobs get this long after SIGTERM.
    shutdown_timeout: float = msgspec.field(default=20.0, name="WORKER_SHUTDOWN_TIMEOUT")
