"""The sessions-reset mark a restore leaves: older tokens are refused, newer ones are not."""

from __future__ import annotations

from litestar.stores.memory import MemoryStore

from keel.auth.revocation import SESSIONS_RESET_KEY, Revocations


async def test_tokens_issued_before_the_mark_are_refused() -> None:
    store = MemoryStore()
    revocations = Revocations(cache_seconds=1)
    assert not await revocations.issued_before_reset(store, 100)  # no mark: nothing refused
    await store.set(SESSIONS_RESET_KEY, b"1000")
    fresh = Revocations(cache_seconds=1)
    assert await fresh.issued_before_reset(store, 999)
    assert not await fresh.issued_before_reset(store, 1000)
    assert not await fresh.issued_before_reset(store, 1001)
