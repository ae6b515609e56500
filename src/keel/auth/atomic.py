"""Atomic set-if-absent and windowed counters on the app's Litestar stores.

Litestar's :class:`~litestar.stores.base.Store` has only get/set, so "remember this nonce unless
it is already there" would be a check-then-set race: two copies of one signed request sent at the
same moment could both pass. On Redis this module uses small Lua scripts (one round trip per
call: a retry-safe set-if-absent, ``INCR`` with a window) on the store's client and key
namespace, which :class:`keel.stores.NamespacedRedisStore` exposes. In memory (one process,
``APP_ENV=local``) the store's own asyncio lock makes get+set atomic.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import msgspec
from litestar.stores.base import Store

from keel.redis_conn import CLAIM_SCRIPT
from keel.stores import LockedMemoryStore, NamespacedRedisStore

# Counter: INCR, and start the window's TTL on the first hit. Returns {count, ttl}.
_INCR_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
"""
# Peek at a counter and remember a nonce with the retry-safe rule of
# keel.redis_conn.CLAIM_SCRIPT (finding one's own claim counts as added), in one command.
# Returns {count, ttl, added}.
_PEEK_AND_ADD_SCRIPT = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('TTL', KEYS[1])
local prev = redis.call('GET', KEYS[2])
local added = 0
if not prev then redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[1]); added = 1
elseif prev == ARGV[2] then added = 1 end
return {n, ttl, added}
"""


def memory_lock(store: Store) -> asyncio.Lock:
    """The lock that makes a check-then-set step atomic on a one-process memory store."""
    if not isinstance(store, LockedMemoryStore):
        raise TypeError(f"atomic operations need a keel.stores store, not {type(store).__name__}")
    return store.lock


def _claim() -> str:
    return secrets.token_hex(8)


class _Window(msgspec.Struct):
    count: int
    reset_at: float


async def add_if_absent(store: Store, key: str, ttl_seconds: int) -> bool:
    """Store ``key`` for ``ttl_seconds``; False if it was already there (a replay)."""
    if isinstance(store, NamespacedRedisStore):
        added = await store.script(CLAIM_SCRIPT)(
            keys=[store.full_key(key)], args=[_claim(), ttl_seconds * 1000]
        )
        return bool(added)
    async with memory_lock(store):
        if await store.exists(key):
            return False
        await store.set(key, b"1", expires_in=ttl_seconds)
        return True


async def peek_and_add(
    counters: Store, counter_key: str, nonces: Store, nonce_key: str, ttl_seconds: int
) -> tuple[int, int, bool]:
    """:func:`peek` the counter and :func:`add_if_absent` the nonce, in one Redis round trip.

    Returns (hits so far, seconds until the window resets, nonce was new).
    """
    if (
        isinstance(counters, NamespacedRedisStore)
        and isinstance(nonces, NamespacedRedisStore)
        and counters.client is nonces.client
    ):
        count, ttl, added = await counters.script(_PEEK_AND_ADD_SCRIPT)(
            keys=[counters.full_key(counter_key), nonces.full_key(nonce_key)],
            args=[ttl_seconds, _claim()],
        )
        return int(count), max(int(ttl), 1) if count else 0, bool(added)
    count, reset_in = await peek(counters, counter_key)
    return count, reset_in, await add_if_absent(nonces, nonce_key, ttl_seconds)


async def increment(store: Store, key: str, window_seconds: int) -> tuple[int, int]:
    """Count one hit in a fixed window; returns (hits so far, seconds until the window resets)."""
    if isinstance(store, NamespacedRedisStore):
        count, ttl = await store.script(_INCR_SCRIPT)(
            keys=[store.full_key(key)], args=[window_seconds]
        )
        return int(count), int(ttl)
    async with memory_lock(store):
        now = time.time()
        window = await _read_window(store, key, now)
        if window is None:
            window = _Window(count=0, reset_at=now + window_seconds)
        window.count += 1
        remaining = max(1, int(window.reset_at - now + 0.999))
        await store.set(key, msgspec.json.encode(window), expires_in=remaining)
        return window.count, remaining


async def peek(store: Store, key: str) -> tuple[int, int]:
    """(hits so far, seconds until reset) without counting; (0, 0) when no window is open."""
    if isinstance(store, NamespacedRedisStore):
        full_key = store.full_key(key)
        pipe = store.client.pipeline(transaction=False)
        pipe.get(full_key)
        pipe.ttl(full_key)
        raw, ttl = await pipe.execute()
        return (int(raw), max(int(ttl), 1)) if raw is not None else (0, 0)
    now = time.time()
    window = await _read_window(store, key, now)
    if window is None:
        return 0, 0
    return window.count, max(1, int(window.reset_at - now + 0.999))


async def _read_window(store: Store, key: str, now: float) -> _Window | None:
    raw = await store.get(key)
    if raw is None:
        return None
    window = msgspec.json.decode(raw, type=_Window)
    return window if window.reset_at > now else None
