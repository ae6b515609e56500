"""Prometheus metrics: one aggregated /metrics per process tree, on an internal port."""

from __future__ import annotations

from typing import Annotated

import msgspec


class MetricsSettings(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool = msgspec.field(default=True, name="METRICS_ENABLED")
    # Never the public app port: the proxy does not route here. Containers bind 0.0.0.0 so
    # Prometheus on the stack's network reaches it (the port is never published).
    host: str = msgspec.field(default="127.0.0.1", name="METRICS_HOST")
    # `keel serve` exports here, `keel worker` on METRICS_WORKER_PORT (one host may run both).
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = msgspec.field(
        default=9464, name="METRICS_PORT"
    )
    worker_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = msgspec.field(
        default=9465, name="METRICS_WORKER_PORT"
    )
