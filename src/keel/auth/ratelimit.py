"""Rate limits: Litestar's ``RateLimitConfig`` (plus ``Retry-After``), and failure counters.

Litestar's middleware counts every request per identifier, which fits "login attempts per IP".
It cannot see outcomes or bodies, so "failed logins per username" and "signature failures per
key id" are counted by :class:`FailureLimiter` on the same ``rate_limit`` store.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request
from litestar.middleware.rate_limit import (
    CacheObject,
    RateLimitConfig,
    RateLimitMiddleware,
    get_remote_address,
)
from litestar.stores.base import Store

from keel.auth import atomic
from keel.auth.errors import ThrottledError
from keel.client_address import ClientAddress


class RetryAfterRateLimitMiddleware(RateLimitMiddleware):
    """Litestar's limiter, with the ``Retry-After`` header HTTP clients actually read."""

    def create_response_headers(self, cache_object: CacheObject) -> dict[str, str]:
        headers = super().create_response_headers(cache_object)
        if len(cache_object.history) >= self.max_requests:
            headers["Retry-After"] = str(max(1, cache_object.reset - int(time.time())))
        return headers


def login_rate_limit(per_minute: int, clients: ClientAddress | None = None) -> RateLimitConfig:
    """Login attempts per client address (attach to the login handler only); ``clients``
    decides the address behind a trusted proxy (default: the TCP peer)."""

    def login_identifier(request: Request[Any, Any, Any]) -> str:
        client = clients.of_scope(request.scope) if clients else get_remote_address(request)
        return f"login-ip:{client}"

    return RateLimitConfig(
        rate_limit=("minute", per_minute),
        identifier_for_request=login_identifier,
        middleware_class=RetryAfterRateLimitMiddleware,
        store="rate_limit",
    )


class FailureLimiter:
    """At most ``limit`` failures per identity in a fixed window; then 429 until it ends."""

    def __init__(self, prefix: str, limit: int, window_seconds: int) -> None:
        self.prefix = prefix
        self.limit = limit
        self.window = window_seconds

    def key(self, identity: str) -> str:
        return f"{self.prefix}:{identity}"

    async def check(self, store: Store, identity: str) -> None:
        count, reset_in = await atomic.peek(store, self.key(identity))
        if count >= self.limit:
            raise ThrottledError(reset_in)

    async def failed(self, store: Store, identity: str) -> None:
        """Count one failure; raises :class:`ThrottledError` once over the limit."""
        count, reset_in = await atomic.increment(store, self.key(identity), self.window)
        if count > self.limit:
            raise ThrottledError(reset_in)

    async def reset(self, store: Store, identity: str) -> None:
        await store.delete(self.key(identity))
