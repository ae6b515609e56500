"""``/api/gpus`` aggregation: latest snapshot per worker, age, stale marking, capacity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from keel.gpu.fleet import GpuFleet, GpuReport, aggregate
from keel.gpu.model import Gpu, GpuSnapshot

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
STALE = 12.0


def gpus(*healthy: bool, total: int = 81559, used: int = 1000, taken: float = 0.0) -> GpuSnapshot:
    return GpuSnapshot(
        available=True,
        hostname="gpu-host",
        taken_at=NOW - timedelta(seconds=taken),
        source="fake:test",
        driver_version="550.54.15",
        cuda_version="12.4",
        gpus=[
            Gpu(index=i, ok=True, memory_total_mib=total, memory_used_mib=used)
            if ok
            else Gpu(index=i, ok=False, error="GPU is lost")
            for i, ok in enumerate(healthy)
        ],
    )


NO_GPU = GpuSnapshot(
    available=False,
    reason="NVML reports no NVIDIA device",
    hostname="cpu",
    taken_at=NOW,
    source="nvml",
)


def report(
    worker: str, age: float, snap: GpuSnapshot | None, queues: tuple[str, ...] = ("gpu",)
) -> GpuReport:
    return GpuReport(
        worker_id=worker, queues=list(queues), seen_at=NOW - timedelta(seconds=age), gpu=snap
    )


def run(*reports: GpuReport) -> GpuFleet:
    return aggregate(reports, now=NOW, stale_after_seconds=STALE)


def test_no_workers_no_capacity() -> None:
    fleet = run()

    assert fleet.workers == []
    assert not fleet.has_capacity
    assert fleet.capacity.gpus == 0


def test_latest_report_per_worker_with_its_age() -> None:
    fleet = run(
        report("w1", 9.0, gpus(True)),
        report("w1", 2.5, gpus(True, True, taken=30.0)),
        report("w1", 5.0, gpus(True, True, True)),
    )

    (worker,) = fleet.workers
    assert worker.age_seconds == 2.5
    assert worker.snapshot_age_seconds == 30.0  # the heartbeat carried an older snapshot
    assert worker.usable_gpus == 2
    assert worker.hostname == "gpu-host"
    assert not worker.stale


def test_capacity_sums_live_gpu_workers() -> None:
    fleet = run(
        report("a", 1.0, gpus(True, True, used=500)),
        report("b", 2.0, gpus(True, False, True, True)),
    )

    assert fleet.has_capacity
    assert fleet.capacity.workers == 2
    assert fleet.capacity.gpus == 5  # the lost GPU on b does not count
    assert fleet.capacity.memory_total_mib == 5 * 81559
    assert fleet.capacity.memory_used_mib == 2 * 500 + 3 * 1000
    assert [w.worker_id for w in fleet.workers] == ["a", "b"]


def test_stale_worker_is_marked_and_not_capacity() -> None:
    fleet = run(report("old", STALE + 0.1, gpus(True)), report("edge", STALE, gpus(True)))

    by_id = {w.worker_id: w for w in fleet.workers}
    assert by_id["old"].stale
    assert not by_id["edge"].stale
    assert fleet.capacity.gpus == 1


def test_gpu_host_not_on_gpu_queue_is_not_capacity() -> None:
    # A default-queue worker on a GPU host reports its GPUs but never takes GPU jobs.
    fleet = run(report("cpu-only", 1.0, gpus(True, True), queues=("default",)))

    (worker,) = fleet.workers
    assert worker.usable_gpus == 2
    assert not worker.consumes_gpu_queue
    assert not fleet.has_capacity


def test_workers_without_gpus_are_listed_without_capacity() -> None:
    fleet = run(report("no-gpu", 1.0, NO_GPU), report("silent", 1.0, None, queues=("default",)))

    assert [w.usable_gpus for w in fleet.workers] == [0, 0]
    assert fleet.workers[0].gpu is not None
    assert fleet.workers[0].gpu.reason == "NVML reports no NVIDIA device"
    assert fleet.workers[1].hostname is None
    assert fleet.workers[1].snapshot_age_seconds is None
    assert not fleet.has_capacity


def test_clock_skew_and_naive_timestamps() -> None:
    ahead = GpuReport(worker_id="ahead", queues=["gpu"], seen_at=NOW + timedelta(seconds=2))
    naive = GpuReport(
        worker_id="naive",
        queues=["gpu"],
        seen_at=(NOW - timedelta(seconds=3)).replace(tzinfo=None),
        gpu=gpus(True),
    )

    fleet = run(ahead, naive)

    assert [w.age_seconds for w in fleet.workers] == [0.0, 3.0]
    assert fleet.capacity.gpus == 1


@pytest.mark.parametrize("queue", ["gpu", "gpu-a100"])
def test_gpu_queue_name_is_a_parameter(queue: str) -> None:
    fleet = aggregate(
        [report("w", 1.0, gpus(True), queues=(queue,))],
        now=NOW,
        stale_after_seconds=STALE,
        gpu_queue="gpu-a100",
    )

    assert fleet.has_capacity is (queue == "gpu-a100")


def test_fleet_is_json_for_the_api() -> None:
    fleet = run(report("a", 1.0, gpus(True)), report("b", 30.0, NO_GPU))

    doc = msgspec.json.decode(msgspec.json.encode(fleet))
    assert set(doc) == {
        "generated_at",
        "stale_after_seconds",
        "has_capacity",
        "capacity",
        "workers",
    }
    assert doc["workers"][1]["stale"] is True
    assert msgspec.json.decode(msgspec.json.encode(fleet), type=GpuFleet) == fleet
