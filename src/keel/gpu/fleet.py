"""``GET /api/gpus`` as a pure function: worker heartbeats in, the fleet's GPUs and capacity out.

The API handler reads heartbeat records (from Redis), turns each into a :class:`GpuReport` and
returns ``aggregate(...)``; no I/O or clock here, so every rule is tested directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import msgspec

from keel.gpu.model import GpuSnapshot

GPU_QUEUE = "gpu"


class GpuReport(msgspec.Struct, frozen=True, kw_only=True):
    """The part of one worker heartbeat that ``/api/gpus`` needs."""

    worker_id: str
    queues: list[str]
    # When the worker wrote the heartbeat (timezone-aware; naive values are taken as UTC).
    seen_at: datetime
    # None when the heartbeat carried no snapshot (a worker that does not probe GPUs).
    gpu: GpuSnapshot | None = None


class FleetWorker(msgspec.Struct, frozen=True, kw_only=True):
    worker_id: str
    hostname: str | None
    queues: list[str]
    seen_at: datetime
    # Seconds since the heartbeat; the snapshot it carried may be older (snapshot_age_seconds).
    age_seconds: float
    snapshot_age_seconds: float | None
    # No heartbeat for longer than stale_after_seconds: its GPUs do not count as capacity.
    stale: bool
    consumes_gpu_queue: bool
    # Devices that read without error; failed (lost, unknown error) ones are in ``gpu``.
    usable_gpus: int
    gpu: GpuSnapshot | None


class GpuCapacity(msgspec.Struct, frozen=True, kw_only=True):
    """What GPU jobs can run on now: live workers on the gpu queue with usable GPUs."""

    workers: int
    gpus: int
    memory_total_mib: int
    memory_used_mib: int


class GpuFleet(msgspec.Struct, frozen=True, kw_only=True):
    generated_at: datetime
    stale_after_seconds: float
    # False means a job on the gpu queue stays queued until a GPU worker appears.
    has_capacity: bool
    capacity: GpuCapacity
    workers: list[FleetWorker]


def aggregate(
    reports: Iterable[GpuReport],
    *,
    now: datetime,
    stale_after_seconds: float,
    gpu_queue: str = GPU_QUEUE,
) -> GpuFleet:
    """The latest report per worker with its age, stale marking and the total GPU capacity."""
    now = _aware(now)
    latest: dict[str, GpuReport] = {}
    for report in reports:
        seen = latest.get(report.worker_id)
        if seen is None or _aware(report.seen_at) > _aware(seen.seen_at):
            latest[report.worker_id] = report

    workers = [
        _worker(report, now, stale_after_seconds, gpu_queue) for _, report in sorted(latest.items())
    ]
    serving = [
        worker
        for worker in workers
        if not worker.stale and worker.consumes_gpu_queue and worker.usable_gpus
    ]
    gpus = [gpu for worker in serving if worker.gpu for gpu in worker.gpu.healthy_gpus]
    capacity = GpuCapacity(
        workers=len(serving),
        gpus=len(gpus),
        memory_total_mib=sum(gpu.memory_total_mib or 0 for gpu in gpus),
        memory_used_mib=sum(gpu.memory_used_mib or 0 for gpu in gpus),
    )
    return GpuFleet(
        generated_at=now,
        stale_after_seconds=stale_after_seconds,
        has_capacity=capacity.gpus > 0,
        capacity=capacity,
        workers=workers,
    )


def _worker(report: GpuReport, now: datetime, stale_after: float, gpu_queue: str) -> FleetWorker:
    age = _age(now, report.seen_at)
    snap = report.gpu
    return FleetWorker(
        worker_id=report.worker_id,
        hostname=snap.hostname if snap else None,
        queues=list(report.queues),
        seen_at=_aware(report.seen_at),
        age_seconds=age,
        snapshot_age_seconds=None if snap is None else _age(now, snap.taken_at),
        stale=age > stale_after,
        consumes_gpu_queue=gpu_queue in report.queues,
        usable_gpus=len(snap.healthy_gpus) if snap and snap.available else 0,
        gpu=snap,
    )


def _age(now: datetime, moment: datetime) -> float:
    # A clock slightly ahead on the worker gives a negative age; it is not "from the future".
    return round(max(0.0, (now - _aware(moment)).total_seconds()), 3)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
