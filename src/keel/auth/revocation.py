"""Revoked token ids: in the ``revoked_tokens`` store (Redis) until the token would expire.

Asking Redis on every request costs about as much as the rest of authentication together, so
each process remembers answers for ``JWT_REVOCATION_CACHE_SECONDS`` (default 1 s; 0 = ask every
time). A logout takes effect at once on the process that handled it and within that many
seconds on every other one. "Revoked" answers never go stale, so they are kept (up to
``_MAX_ENTRIES``; past that the set starts over and Redis answers again).
"""

from __future__ import annotations

import time

from litestar.stores.base import Store

_MAX_ENTRIES = 50_000
# Written by `keel restore` (keel.backup.aftercare): tokens issued before it are refused, since
# the revocations and one-use claims they were checked against may not have been restored.
SESSIONS_RESET_KEY = "sessions-reset-at"
_RESET_CACHE_SECONDS = 5.0


class Revocations:
    def __init__(self, cache_seconds: float) -> None:
        self.cache_seconds = cache_seconds
        # jti -> monotonic time until which "not revoked" holds
        self._clear: dict[str, float] = {}
        self._revoked: set[str] = set()
        self._reset_at = 0
        self._reset_read = float("-inf")

    async def is_revoked(self, store: Store, jti: str) -> bool:
        if jti in self._revoked:
            return True
        now = time.monotonic()
        if self._clear.get(jti, 0.0) > now:
            return False
        revoked = await store.exists(jti)
        if revoked:
            self._remember_revoked(jti)
        elif self.cache_seconds > 0:
            if len(self._clear) >= _MAX_ENTRIES:
                self._clear.clear()
            self._clear[jti] = now + self.cache_seconds
        return revoked

    async def issued_before_reset(self, store: Store, issued_at: int) -> bool:
        """The token predates the last restore (read from the store at most every 5 s)."""
        now = time.monotonic()
        if now - self._reset_read >= _RESET_CACHE_SECONDS:
            raw = await store.get(SESSIONS_RESET_KEY)
            self._reset_at = int(raw) if raw else 0
            self._reset_read = now
        return issued_at < self._reset_at

    async def revoke(self, store: Store, jti: str, ttl_seconds: int) -> None:
        await store.set(jti, b"1", expires_in=max(1, ttl_seconds))
        self._remember_revoked(jti)

    def _remember_revoked(self, jti: str) -> None:
        self._clear.pop(jti, None)
        if len(self._revoked) >= _MAX_ENTRIES:
            self._revoked.clear()  # the store still has them
        self._revoked.add(jti)
