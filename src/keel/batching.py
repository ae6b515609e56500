"""Group commit: calls that arrive while a flush is in flight ride the next flush together.

At low load every call flushes alone (no added latency); under load, calls queue up during a
database round trip and the next round trip serves them all. One flush runs at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(
        self, flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]], max_size: int = 200
    ) -> None:
        self._flush = flush
        self._max_size = max_size
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._running: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._running is None:
            self._running = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_size]
                del self._pending[: self._max_size]
                try:
                    results = await self._flush([item for item, _ in batch])
                except Exception as exc:  # noqa: BLE001 - every caller gets the failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._running = None
