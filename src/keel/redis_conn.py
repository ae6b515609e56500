"""How Keel reaches Redis: the URL, a password-free description, and the connection options.

Litestar-free on purpose: the worker's container healthcheck imports this every few seconds.
Every pool Keel opens (shared client, stores, broker, result backend) takes
:func:`connection_options`, so a Redis restart costs a reconnect inside the call that finds
the dead socket, not a failed request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry  # not redis.retry: the sync one never awaits the call
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from keel.config import Settings

# Retries of one command after a connection error: 50 ms, 100 ms, 200 ms (capped at 1 s).
COMMAND_RETRIES = 3

# Set-if-absent that is safe under those retries. KEYS[1]; ARGV[1] the caller's claim (a random
# token), ARGV[2] the TTL in ms. Returns 1 when the key now holds this claim. A plain SET NX
# retried after a lost reply would find the key it had just set and report someone else's.
CLAIM_SCRIPT = """
local holder = redis.call('GET', KEYS[1])
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]); return 1 end
if holder == ARGV[1] then return 1 end
return 0
"""


def redis_url(settings: Settings) -> str:
    """``REDIS_URL`` if given, else built from the seed's ``REDIS_*`` settings."""
    redis = settings.redis
    if redis.url:
        return redis.url.reveal()
    auth = f":{quote(redis.password.reveal(), safe='')}@" if redis.password else ""
    return f"redis://{auth}{redis.host}:{redis.port}/{redis.db}"


def redis_where(settings: Settings) -> str:
    """host:port/db of the Redis in use, never the password."""
    if settings.redis.url:
        parts = urlsplit(settings.redis.url.reveal())
        return f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"
    r = settings.redis
    return f"{r.host}:{r.port}/{r.db}"


def connection_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``Redis.from_url`` / ``ConnectionPool.from_url``."""
    timeout = settings.redis.connect_timeout
    return {
        "socket_connect_timeout": timeout,
        "socket_timeout": max(timeout, 10.0),
        "health_check_interval": 15,
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=COMMAND_RETRIES),
        # Connection errors only: a timeout means a hung server, and retrying it would multiply
        # the wait by the number of attempts.
        "retry_on_error": [RedisConnectionError],
    }


def make_client(settings: Settings) -> Redis:
    """A client with its own pool and the options above."""
    return Redis.from_url(redis_url(settings), **connection_options(settings))
