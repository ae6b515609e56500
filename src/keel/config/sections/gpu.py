"""GPU telemetry (gpustat / NVML)."""

from __future__ import annotations

import msgspec


class GpuSettings(msgspec.Struct, frozen=True, kw_only=True):
    # A bundled fixture name (h100x8, none, gpu-lost, ...) or a JSON file describing fake GPUs;
    # tests and GPU-less demos only (docs/gpu.md). Empty: the real NVML.
    fake_nvml: str = msgspec.field(default="", name="GPU_FAKE_NVML")
    # /api/gpus marks a worker stale when its last heartbeat is older than this; its GPUs then
    # stop counting as capacity. Keep it above 2 x WORKER_HEARTBEAT_INTERVAL.
    stale_after_seconds: float = msgspec.field(default=12.0, name="GPU_STALE_AFTER_SECONDS")
