"""The shared Redis client (stores, heartbeats, node-id leases, readiness), as a resource.

:attr:`RedisResource.client` is a ``redis.asyncio.Redis`` with a connection pool, created with
the resource (it connects on first use); commands retry a few times on connection errors, so a
Redis restart costs a few failed calls, not a process restart. With ``REDIS_BACKEND=memory``
there is no Redis and no such resource (``Runtime.redis`` is None).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from keel.components import Component, ReadinessCheck
from keel.config import Settings
from keel.lifecycle import Resource
from keel.redis_conn import make_client, redis_where
from keel.resilience import describe_exception, retry_until_ready

if TYPE_CHECKING:
    from keel.runtime import Runtime


class RedisUnavailableError(Exception):
    """Redis did not answer within the startup retries (it may come back later)."""


class RedisAuthError(RedisUnavailableError):
    """Redis refused our credentials (NOAUTH / WRONGPASS): waiting does not fix a password."""


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, AuthenticationError | ResponseError):
        return False
    return isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError)


async def ping_with_retries(client: Redis, settings: Settings) -> RedisUnavailableError | None:
    where = redis_where(settings)
    attempts = max(1, settings.redis.connect_retries)
    failure = await retry_until_ready(
        client.ping,
        attempts=attempts,
        retryable=_retryable,
        waiting=f"Redis at {where} not reachable yet",
    )
    if failure is None:
        return None
    exc, _ = failure
    if isinstance(exc, AuthenticationError | ResponseError):
        return RedisAuthError(f"Redis at {where} refused us: {describe_exception(exc)}")
    if not _retryable(exc):
        raise exc
    return RedisUnavailableError(
        f"Redis at {where} unreachable after {attempts} attempts: {describe_exception(exc)}"
    )


class RedisResource:
    name = "redis"
    depends_on: Sequence[Resource] = ()

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.client: Redis = make_client(settings)

    async def start(self) -> None:
        error = await ping_with_retries(self.client, self._settings)
        if error is None:
            return
        if self._settings.redis.required_at_start or isinstance(error, RedisAuthError):
            raise error
        logger.error("{}; continuing, /health/ready reports it until it is back", error)

    async def stop(self) -> None:
        await self.client.aclose()

    async def ping(self) -> None:
        await self.client.ping()


def component(runtime: Runtime) -> Component:
    if runtime.redis is None:
        return Component(name="redis")
    return Component(name="redis", readiness=[ReadinessCheck("redis", runtime.redis.ping)])
