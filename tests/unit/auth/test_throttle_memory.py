"""keel.auth.throttle on the in-memory store (APP_ENV=local): the same rules as on Redis
(tests/service/auth/test_throttling.py holds those through a real server)."""

from __future__ import annotations

import asyncio

import pytest

from keel.auth.errors import ThrottledError
from keel.auth.throttle import Limits, LoginThrottle, SignatureThrottle
from keel.stores import LockedMemoryStore

LIMITS = Limits(per_client=3, soft_total=5, window_seconds=60, backoff_max_seconds=4)


async def _admitted(throttle: LoginThrottle, store: LockedMemoryStore, client: str) -> bool:
    try:
        await throttle.admit(store, "alice", client)
    except ThrottledError:
        return False
    return True


async def test_concurrent_attempts_admit_exactly_the_limit() -> None:
    store, throttle = LockedMemoryStore(), LoginThrottle(LIMITS)
    results = await asyncio.gather(*(_admitted(throttle, store, "a") for _ in range(10)))
    assert results.count(True) == 3
    assert await _admitted(throttle, store, "b")  # another client is not affected


async def test_account_past_its_soft_limit_is_slowed_not_locked() -> None:
    store, throttle = LockedMemoryStore(), LoginThrottle(LIMITS)
    assert all([await _admitted(throttle, store, f"c{i}") for i in range(5)])
    assert await _admitted(throttle, store, "c5")  # the first over the limit starts a backoff
    with pytest.raises(ThrottledError) as info:
        await throttle.admit(store, "alice", "owner")
    assert 1 <= info.value.retry_after <= LIMITS.backoff_max_seconds
    await throttle.succeeded(store, "alice", "c5")  # a success clears the account
    assert await _admitted(throttle, store, "owner")


async def test_signature_failures_throttle_the_failing_client_only() -> None:
    store, nonces, throttle = LockedMemoryStore(), LockedMemoryStore(), SignatureThrottle(LIMITS)
    for _ in range(3):
        await throttle.failed(store, "kk_1", "attacker")
    with pytest.raises(ThrottledError):
        await throttle.failed(store, "kk_1", "attacker")
    with pytest.raises(ThrottledError):  # valid or not: the attacker learns nothing
        await throttle.peek_and_add(store, "kk_1", "attacker", nonces=nonces, nonce_key="n1", ttl=9)
    assert await throttle.peek_and_add(
        store, "kk_1", "service", nonces=nonces, nonce_key="n2", ttl=9
    )
