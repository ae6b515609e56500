"""The shared Redis client (heartbeats, node-id leases, readiness), as a resource.

``state.redis`` is a ``redis.asyncio.Redis`` with a connection pool; commands retry a few times
on connection errors, so a Redis restart costs a few failed calls, not a process restart.
With ``REDIS_BACKEND=memory`` there is no Redis: ``state.redis`` is None.
"""

from __future__ import annotations

import asyncio

from litestar.datastructures import State
from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from keel.components import Component, ReadinessCheck
from keel.config import Settings
from keel.db.engine import backoff_delay
from keel.lifecycle import describe_exception
from keel.redis_conn import make_client, redis_where


class RedisUnavailableError(Exception):
    pass


async def ping_with_retries(client: Redis, settings: Settings) -> RedisUnavailableError | None:
    attempts = max(1, settings.redis.connect_retries)
    where = redis_where(settings)
    for attempt in range(1, attempts + 1):
        try:
            await client.ping()
        except (AuthenticationError, ResponseError) as exc:
            # NOAUTH / WRONGPASS: waiting does not fix a password.
            return RedisUnavailableError(f"Redis at {where} refused us: {describe_exception(exc)}")
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            if attempt == attempts:
                return RedisUnavailableError(
                    f"Redis at {where} unreachable after {attempts} attempts: "
                    f"{describe_exception(exc)}"
                )
            delay = backoff_delay(attempt)
            logger.warning(
                "Redis at {} not reachable yet; retry {}/{} in {:.1f}s",
                where,
                attempt,
                attempts - 1,
                delay,
            )
            await asyncio.sleep(delay)
        else:
            return None
    return None


class RedisResource:
    name = "redis"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.client: Redis | None = None

    async def start(self, state: State) -> None:
        self.client = make_client(self._settings)
        state.redis = self.client
        error = await ping_with_retries(self.client, self._settings)
        if error is None:
            return
        if self._settings.redis.required_at_start or "refused us" in str(error):
            raise error
        logger.error("{}; continuing, /health/ready reports it until it is back", error)

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()


async def _check_redis(state: State) -> None:
    client: Redis | None = state.get("redis")
    if client is None:
        raise RuntimeError("Redis client not started")
    await client.ping()


def component(settings: Settings) -> Component:
    if settings.redis.backend == "memory":
        return Component(name="redis")
    return Component(
        name="redis",
        resources=[RedisResource(settings)],
        readiness=[ReadinessCheck("redis", _check_redis)],
    )
