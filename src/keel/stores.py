"""Key-value stores (rate limits, nonces, revoked tokens, cache): Redis, or memory locally.

The stores are built per app: on Redis over the process's shared client (the runtime's, with
its retry options), each name in its own key namespace. The two store classes carry what
:mod:`keel.auth.atomic` needs for its atomic operations, as public attributes of their own:
:class:`NamespacedRedisStore` its client, its key naming and its registered Lua scripts;
:class:`LockedMemoryStore` an asyncio lock. Nothing reaches into Litestar's private fields.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.stores.registry import StoreRegistry
from redis.asyncio import Redis


class NamespacedRedisStore(RedisStore):
    """Litestar's RedisStore that also exposes its client and how it names keys.

    ``full_key`` must match Litestar's own key naming (``<namespace>:<key>``); a unit test
    writes through the store and reads the raw key back, so an upgrade that changes it fails.
    """

    def __init__(self, client: Redis, namespace: str) -> None:
        # The client belongs to the runtime's Redis resource, which closes it.
        super().__init__(redis=client, namespace=namespace, handle_client_shutdown=False)
        self.client = client
        self._scripts: dict[str, Any] = {}

    def full_key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def script(self, source: str) -> Any:
        """The Lua script registered on this store's client (sent once, then called by SHA)."""
        registered = self._scripts.get(source)
        if registered is None:
            registered = self._scripts[source] = self.client.register_script(source)
        return registered

    def with_namespace(self, namespace: str) -> NamespacedRedisStore:
        return NamespacedRedisStore(self.client, f"{self.namespace}_{namespace}")


class LockedMemoryStore(MemoryStore):
    """A memory store (one process, ``APP_ENV=local``) with a lock for check-then-set steps."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = asyncio.Lock()


def build_store_registry(app_name: str, redis: Redis | None) -> StoreRegistry:
    """Every named store under ``app_name`` on ``redis``; in memory when there is no Redis."""
    if redis is None:

        def memory_store(name: str) -> Store:
            return LockedMemoryStore()

        return StoreRegistry(default_factory=memory_store)

    root = NamespacedRedisStore(redis, namespace=app_name)

    def redis_store(name: str) -> Store:
        return root.with_namespace(name)

    return StoreRegistry(default_factory=redis_store)
