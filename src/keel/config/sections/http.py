"""The HTTP server (Granian) and the HTTP surface (CORS, limits, docs)."""

from __future__ import annotations

from typing import Annotated

import msgspec


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = msgspec.field(default="127.0.0.1", name="HTTP_HOST")
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = msgspec.field(
        default=8000, name="HTTP_PORT"
    )
    workers: Annotated[int, msgspec.Meta(ge=1, le=256)] = msgspec.field(
        default=1, name="HTTP_WORKERS"
    )
    runtime_threads: Annotated[int, msgspec.Meta(ge=1, le=256)] = msgspec.field(
        default=1, name="HTTP_RUNTIME_THREADS"
    )
    backlog: Annotated[int, msgspec.Meta(ge=1, le=65535)] = msgspec.field(
        default=1024, name="HTTP_BACKLOG"
    )
    respawn_failed_workers: bool = msgspec.field(default=True, name="HTTP_RESPAWN_FAILED_WORKERS")
    # The shutdown budget: Granian kills workers that take longer than this after SIGTERM.
    # Compose's stop_grace_period must stay above it.
    workers_kill_timeout: Annotated[int, msgspec.Meta(ge=1, le=3600)] = msgspec.field(
        default=10, name="HTTP_WORKERS_KILL_TIMEOUT"
    )
    access_log: bool = msgspec.field(default=True, name="HTTP_ACCESS_LOG")
    reload: bool = msgspec.field(default=False, name="HTTP_RELOAD")
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1, le=1 << 31)] = msgspec.field(
        default=1_048_576, name="HTTP_MAX_BODY_BYTES"
    )
    behind_tls: bool = msgspec.field(default=False, name="HTTP_BEHIND_TLS")
    allowed_hosts: list[str] = msgspec.field(default_factory=lambda: ["*"], name="ALLOWED_HOSTS")
    # Reverse proxies (addresses or CIDR blocks) whose X-Forwarded-For is believed; from
    # anyone else the header is ignored (keel.client_address). Empty: the TCP peer only.
    trusted_proxies: list[str] = msgspec.field(default_factory=list, name="TRUSTED_PROXIES")
    cors_origins: list[str] = msgspec.field(default_factory=list, name="CORS_ORIGINS")
    cors_methods: list[str] = msgspec.field(
        default_factory=lambda: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        name="CORS_METHODS",
    )
    cors_headers: list[str] = msgspec.field(
        default_factory=lambda: ["Authorization", "Content-Type", "X-Request-ID"],
        name="CORS_HEADERS",
    )
    cors_allow_credentials: bool = msgspec.field(default=False, name="CORS_ALLOW_CREDENTIALS")
