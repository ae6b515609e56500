"""``GET /api/gpus``: the fleet's GPUs, from worker heartbeats (:mod:`keel.gpu.fleet` aggregates).

Guarded like the jobs routes (an authenticated caller), on a ``Router`` of its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Controller, Router, get
from litestar.di import NamedDependency
from redis.asyncio import Redis

from keel.auth.guards import require_authenticated
from keel.components import Component, provided
from keel.config import Settings
from keel.gpu.fleet import GpuFleet, GpuReport, aggregate
from keel.gpu.model import GpuSnapshot
from keel.heartbeats import read_heartbeats
from keel.runtime import Runtime

# Route guards of /api/gpus: a caller with a valid JWT or a valid request signature.
GPUS_GUARDS: list[Callable[..., Any]] = [require_authenticated]


class GpuFleetReader:
    """Reads the fleet from the heartbeats in Redis (none without Redis)."""

    def __init__(self, settings: Settings, redis: Redis | None) -> None:
        self.settings = settings
        self.redis = redis

    async def fleet(self) -> GpuFleet:
        reports = []
        if self.redis is not None:
            for beat in await read_heartbeats(self.redis, self.settings):
                gpu = None
                if beat.gpu is not None:
                    gpu = msgspec.convert(beat.gpu, GpuSnapshot)
                reports.append(
                    GpuReport(
                        worker_id=beat.worker_id, queues=beat.queues, seen_at=beat.beat_at, gpu=gpu
                    )
                )
        return aggregate(
            reports,
            now=dt.datetime.now(dt.UTC),
            stale_after_seconds=stale_after_seconds(self.settings),
        )


def stale_after_seconds(settings: Settings) -> float:
    """GPU_STALE_AFTER_SECONDS, kept below the heartbeat TTL: a heartbeat key that expires
    first would drop the worker from the list before it was ever shown stale."""
    return min(settings.gpu.stale_after_seconds, 0.8 * settings.worker.heartbeat_ttl)


class GpusController(Controller):
    path = "/api/gpus"
    tags = ["gpus"]  # noqa: RUF012 - Litestar reads these class attributes

    @get("/")
    async def gpus(self, gpu_fleet: NamedDependency[GpuFleetReader]) -> GpuFleet:
        return await gpu_fleet.fleet()


def gpus_router(reader: GpuFleetReader) -> Router:
    return Router(
        path="/",
        route_handlers=[GpusController],
        guards=list(GPUS_GUARDS),
        dependencies={"gpu_fleet": provided(reader)},
    )


def component(runtime: Runtime) -> Component:
    redis = runtime.redis.client if runtime.redis is not None else None
    return Component(
        name="gpus", route_handlers=[gpus_router(GpuFleetReader(runtime.settings, redis))]
    )
