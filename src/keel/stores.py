"""Key-value stores (rate limits, nonces, revoked tokens, cache): Redis, or memory locally."""

from __future__ import annotations

from urllib.parse import quote

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.stores.registry import StoreRegistry

from keel.config import Settings

# Store names used across the service; each gets its own Redis key namespace.
STORE_NAMES = ("rate_limit", "nonces", "revoked_tokens", "cache")


def redis_url(settings: Settings) -> str:
    """``REDIS_URL`` if given, else built from the seed's ``REDIS_*`` settings."""
    redis = settings.redis
    if redis.url:
        return str(redis.url)
    auth = f":{quote(str(redis.password), safe='')}@" if redis.password else ""
    return f"redis://{auth}{redis.host}:{redis.port}/{redis.db}"


def build_store_registry(settings: Settings) -> StoreRegistry:
    if settings.redis.backend == "memory":

        def memory_store(name: str) -> Store:
            return MemoryStore()

        return StoreRegistry(default_factory=memory_store)

    root = RedisStore.with_client(url=redis_url(settings), namespace=f"{settings.app.name}")

    def redis_store(name: str) -> Store:
        return root.with_namespace(name)

    return StoreRegistry(default_factory=redis_store)
