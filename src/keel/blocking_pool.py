"""CPU-heavy calls (password hashing) off the event loop, in a bounded pool with a bounded queue.

Argon2id costs ~50-200 ms of CPU per hash; run on the event loop, one login stalls every other
request of that worker. Here at most ``threads`` run at once (argon2-cffi releases the GIL, so
they overlap with the loop) and at most ``queue`` more wait; beyond that :class:`PoolBusyError`
comes back at once, so a login flood is answered 503 instead of queueing without bound while
``/health/live`` and every other route keep their latency. The executor is created on first use,
in the process that uses it (Granian forks workers after the app is configured).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class PoolBusyError(Exception):
    """Every thread is busy and the queue is full: retry shortly."""


class BlockingPool:
    def __init__(self, name: str, threads: int, queue: int) -> None:
        self.name = name
        self.threads = threads
        self.capacity = threads + queue
        self._in_flight = 0
        self._executor: ThreadPoolExecutor | None = None
        self._pid = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def _get_executor(self) -> ThreadPoolExecutor:
        if self._executor is None or self._pid != os.getpid():
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix=self.name)
            self._pid = os.getpid()
        return self._executor

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._in_flight >= self.capacity:
            raise PoolBusyError(f"{self.name}: {self._in_flight} calls in flight")
        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._get_executor(), lambda: fn(*args, **kwargs))
        finally:
            self._in_flight -= 1

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
