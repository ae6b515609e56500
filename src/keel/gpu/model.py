"""The typed GPU snapshot: what ``keel gpu --json``, worker heartbeats and ``/api/gpus`` carry.

The JSON shape of :class:`GpuSnapshot` is a contract (``docs/gpu.md``,
``docs/gpu-snapshot.schema.json``). Add optional fields only; anything else bumps
``SNAPSHOT_SCHEMA_VERSION``.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

SNAPSHOT_SCHEMA_VERSION = 1


class GpuProcess(msgspec.Struct, frozen=True, kw_only=True):
    pid: int
    # None when the process owner or name could not be read (another user's process, no /proc).
    user: str | None
    # The executable's base name only: full command lines can carry secrets.
    command: str | None
    # None when the driver does not account per-process memory (e.g. WDDM, some vGPU setups).
    gpu_memory_mib: int | None


class Gpu(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    # False when NVML could not read this device (lost, unknown error); ``error`` says why.
    ok: bool
    error: str | None = None
    uuid: str | None = None
    name: str | None = None
    # Each reading is None when the device does not support it (fans on passive datacenter cards).
    temperature_c: int | None = None
    fan_percent: int | None = None
    power_draw_w: int | None = None
    power_limit_w: int | None = None
    utilization_percent: int | None = None
    memory_used_mib: int | None = None
    memory_total_mib: int | None = None
    # None when the driver cannot list processes; [] when none run.
    processes: list[GpuProcess] | None = None


class GpuSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    schema_version: int = SNAPSHOT_SCHEMA_VERSION
    # True when NVML answered and at least one device was enumerated.
    available: bool
    # Why no GPU is visible (``available`` false); None otherwise.
    reason: str | None = None
    hostname: str
    taken_at: datetime
    # "nvml" for the real library, "fake:<fixture>" under GPU_FAKE_NVML.
    source: str
    driver_version: str | None = None
    # The newest CUDA version the driver supports, e.g. "12.4".
    cuda_version: str | None = None
    gpus: list[Gpu] = msgspec.field(default_factory=list)

    @property
    def healthy_gpus(self) -> list[Gpu]:
        return [gpu for gpu in self.gpus if gpu.ok]

    @property
    def has_usable_gpu(self) -> bool:
        return self.available and bool(self.healthy_gpus)
