"""Group commit: calls made while a flush is in flight share the next flush."""

from __future__ import annotations

import asyncio
from typing import Any

from keel.batching import Batcher


async def test_batcher_groups_calls_made_during_a_flush() -> None:
    sizes: list[int] = []

    async def flush(items: Any) -> list[int]:
        sizes.append(len(items))
        await asyncio.sleep(0.01)
        return [item * 2 for item in items]

    batcher: Batcher[int, int] = Batcher(flush)
    first = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.001)  # the first flush is in flight now
    rest = await asyncio.gather(*(batcher.submit(i) for i in range(1, 10)))
    assert [await first, *rest] == [i * 2 for i in range(10)]
    assert sizes == [1, 9]
