"""Key-value stores (rate limits, nonces, revoked tokens, cache): Redis, or memory locally."""

from __future__ import annotations

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.stores.registry import StoreRegistry

from keel.config import Settings
from keel.redis_conn import make_client

# Store names used across the service; each gets its own Redis key namespace.
STORE_NAMES = ("rate_limit", "nonces", "revoked_tokens", "cache")


def build_store_registry(settings: Settings) -> StoreRegistry:
    if settings.redis.backend == "memory":

        def memory_store(name: str) -> Store:
            return MemoryStore()

        return StoreRegistry(default_factory=memory_store)

    # Not RedisStore.with_client: its pool has no retry, so the first request after a Redis
    # restart would fail on a dead pooled socket.
    root = RedisStore(redis=make_client(settings), namespace=settings.app.name)

    def redis_store(name: str) -> Store:
        return root.with_namespace(name)

    return StoreRegistry(default_factory=redis_store)
