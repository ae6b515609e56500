"""The "sessions reset" mark: tokens issued before a restore are refused.

One Redis key, ``<REDIS_KEY_PREFIX>:auth:sessions-reset-at`` (UNIX seconds, no expiry), set by
``keel restore`` (:mod:`keel.backup.aftercare`). A token whose ``iat`` is older is treated as
revoked. Each process re-reads the mark at most every ``_CACHE_SECONDS``.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from keel.config import Settings

_CACHE_SECONDS = 5.0


def mark_key(settings: Settings) -> str:
    return f"{settings.redis.key_prefix}:auth:sessions-reset-at"


async def mark_sessions_reset(settings: Settings, at: int) -> None:
    from keel.redis_conn import make_client

    client = make_client(settings)
    try:
        await client.set(mark_key(settings), str(at))
    finally:
        await client.aclose()


class SessionsResetMark:
    """Reads the mark (cached); ``issued_before_reset(iat)`` is the check auth asks."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._value = 0
        self._read_at = float("-inf")

    async def reset_at(self, redis: Redis) -> int:
        now = time.monotonic()
        if now - self._read_at >= _CACHE_SECONDS:
            raw = await redis.get(self.key)
            self._value = int(raw) if raw else 0
            self._read_at = now
        return self._value

    async def issued_before_reset(self, redis: Redis, issued_at: int) -> bool:
        return issued_at < await self.reset_at(redis)
