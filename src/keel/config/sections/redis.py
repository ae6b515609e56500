"""Redis (cache, rate limits, nonces, heartbeats, node ids, broker, results) and the broker."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from keel.config.types import SecretStr


class RedisSettings(msgspec.Struct, frozen=True, kw_only=True):
    # memory: in-process broker and stores, no Redis at all (the `local` embedded default).
    backend: Literal["memory", "redis"] = msgspec.field(default="memory", name="REDIS_BACKEND")
    host: str = msgspec.field(default="127.0.0.1", name="REDIS_HOST")
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = msgspec.field(
        default=6379, name="REDIS_PORT"
    )
    password: SecretStr = msgspec.field(default=SecretStr(""), name="REDIS_PASSWORD")
    db: int = msgspec.field(default=0, name="REDIS_DB")
    # A full redis:// URL overrides the REDIS_* parts above. It may carry a password: secret.
    url: SecretStr = msgspec.field(default=SecretStr(""), name="REDIS_URL")
    connect_timeout: float = msgspec.field(default=5.0, name="REDIS_CONNECT_TIMEOUT")
    # Off: an unreachable Redis at start is logged and reported by /health/ready (clients
    # reconnect). On: the process exits after the retries.
    required_at_start: bool = msgspec.field(default=False, name="REDIS_REQUIRED_AT_START")
    connect_retries: int = msgspec.field(default=5, name="REDIS_CONNECT_RETRIES")
    # Prefix of every key Keel writes (heartbeats, node-id leases, broker streams).
    key_prefix: str = msgspec.field(default="keel", name="REDIS_KEY_PREFIX")
