"""GPU telemetry: one snapshot over gpustat/NVML, a fake NVML for tests, fleet aggregation.

Importing this package never touches NVML or gpustat; :func:`snapshot` does, and never raises.
"""

from keel.gpu.model import Gpu, GpuProcess, GpuSnapshot
from keel.gpu.snapshot import NO_GPU_MESSAGE, NoGpuError, has_gpu, require_gpu, snapshot

__all__ = [
    "NO_GPU_MESSAGE",
    "Gpu",
    "GpuProcess",
    "GpuSnapshot",
    "NoGpuError",
    "has_gpu",
    "require_gpu",
    "snapshot",
]
