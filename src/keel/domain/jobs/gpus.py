"""``GET /api/gpus``: the fleet's GPUs, from worker heartbeats (``keel.gpu.fleet`` aggregates)."""

from __future__ import annotations

import datetime as dt

import msgspec
from litestar import Controller, get
from litestar.datastructures import State

from keel.config import Settings
from keel.gpu.fleet import GpuFleet, GpuReport, aggregate
from keel.gpu.model import GpuSnapshot
from keel.tasks.heartbeat import read_heartbeats


async def fleet(state: State, settings: Settings) -> GpuFleet:
    reports = []
    redis = state.get("redis")
    if redis is not None:
        for beat in await read_heartbeats(redis, settings):
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
        stale_after_seconds=stale_after_seconds(settings),
    )


def stale_after_seconds(settings: Settings) -> float:
    """GPU_STALE_AFTER_SECONDS, kept below the heartbeat TTL: a heartbeat key that expires
    first would drop the worker from the list before it was ever shown stale."""
    return min(settings.gpu.stale_after_seconds, 0.8 * settings.worker.heartbeat_ttl)


class GpusController(Controller):
    path = "/api/gpus"
    tags = ["gpus"]  # noqa: RUF012 - Litestar reads these class attributes

    @get("/")
    async def gpus(self, state: State) -> GpuFleet:
        return await fleet(state, state.settings)


def gpus_controller() -> type[Controller]:
    from keel.domain.jobs.controllers import JOBS_GUARDS

    return type("GpusController", (GpusController,), {"guards": list(JOBS_GUARDS)})
