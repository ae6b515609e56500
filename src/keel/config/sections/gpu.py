"""GPU telemetry (gpustat / NVML)."""

from __future__ import annotations

import msgspec


class GpuSettings(msgspec.Struct, frozen=True, kw_only=True):
    # A JSON fixture describing fake GPUs; tests and GPU-less demos only.
    fake_nvml: str = msgspec.field(default="", name="GPU_FAKE_NVML")
