"""The one GPU snapshot function: gpustat over NVML (or the fake NVML), as a typed result.

:func:`snapshot` never raises: no NVML library, no driver, no device, a driver/library mismatch
or a broken fixture all become ``GpuSnapshot(available=False, reason=...)``, because heartbeats
and ``keel gpu`` must keep working on hosts without a GPU. It blocks (gpustat samples process
CPU use for 0.1 s per GPU); call it from a thread in async code.
"""

from __future__ import annotations

import contextlib
import platform
import threading
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from keel.config import Settings
from keel.gpu.model import Gpu, GpuProcess, GpuSnapshot

NO_GPU_MESSAGE = "no NVIDIA GPU visible"
FAKE_LAYER_MISSING = (
    "GPU_FAKE_NVML is set but the fake NVML is not installed: it is test support "
    "(package keel_testing, in a checkout under src/), never part of an image; unset "
    "GPU_FAKE_NVML, or mount src/keel_testing and put it on PYTHONPATH (docs/gpu.md)"
)
# Patching a module is process-wide: one fake at a time, and never while a real query runs
# (snapshot() takes this lock around every query; the fake NVML takes it while installed).
NVML_LOCK = threading.RLock()


def fake_layer() -> ModuleType | None:
    """The fake NVML (``keel_testing.fake_nvml``), or None where it is not installed."""
    try:
        from keel_testing import fake_nvml
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.startswith("keel_testing"):
            return None
        raise
    return fake_nvml


# NVML error name -> what it means on a host and what to do; docs/gpu.md has the long form.
_EXPLANATIONS = {
    "LIBRARY_NOT_FOUND": (
        "NVML library libnvidia-ml.so.1 not found: no NVIDIA driver on this host, or the "
        "container runs without the NVIDIA container toolkit (see docs/gpu.md)"
    ),
    "DRIVER_NOT_LOADED": "NVIDIA kernel driver not loaded (NVML: Driver Not Loaded)",
    "LIB_RM_VERSION_MISMATCH": (
        "Failed to initialize NVML: Driver/library version mismatch: the user-space NVIDIA "
        "library does not match the loaded kernel module; reboot the host (or reload the "
        "nvidia modules) after a driver upgrade"
    ),
    "NO_PERMISSION": "NVML: Insufficient Permissions to open /dev/nvidia* devices",
}


def snapshot(settings: Settings) -> GpuSnapshot:
    """What this host's GPUs look like now (fake ones when ``GPU_FAKE_NVML`` is set)."""
    fake_value = settings.gpu.fake_nvml
    if not fake_value:
        with NVML_LOCK:
            return _query("nvml")
    fake_nvml = fake_layer()
    if fake_nvml is None:
        return _unavailable(f"fake:{fake_value}", FAKE_LAYER_MISSING)
    try:
        path = fake_nvml.resolve_fixture(fake_value, settings.root)
        fake = fake_nvml.load_fixture(path)
    except fake_nvml.FixtureError as exc:
        return _unavailable(f"fake:{fake_value}", str(exc))
    except ImportError as exc:  # the fake patches pynvml, so it needs it too
        return _unavailable(f"fake:{fake_value}", _import_reason(exc))
    with fake_nvml.installed(fake):
        return _query(f"fake:{path.stem}")


def has_gpu(settings: Settings) -> bool:
    """True when NVML answers and at least one device reads without error."""
    return snapshot(settings).has_usable_gpu


class NoGpuError(RuntimeError):
    """Raised by :func:`require_gpu`; the message starts with "no NVIDIA GPU visible"."""

    def __init__(self, snap: GpuSnapshot) -> None:
        reason = snap.reason or "; ".join(f"GPU {gpu.index}: {gpu.error}" for gpu in snap.gpus)
        super().__init__(f"{NO_GPU_MESSAGE} on {snap.hostname}: {reason}")
        self.snapshot = snap


def require_gpu(settings: Settings) -> GpuSnapshot:
    """The snapshot, or :class:`NoGpuError` when no device is usable (``gpu.probe``, startup)."""
    snap = snapshot(settings)
    if not snap.has_usable_gpu:
        raise NoGpuError(snap)
    return snap


def _now() -> datetime:
    return datetime.now(UTC)


def _unavailable(
    source: str, reason: str, driver: str | None = None, cuda: str | None = None
) -> GpuSnapshot:
    return GpuSnapshot(
        available=False,
        reason=reason,
        hostname=platform.node(),
        taken_at=_now(),
        source=source,
        driver_version=driver,
        cuda_version=cuda,
    )


def explain(error: Exception, nvml: ModuleType) -> str:
    """One line for an ``NVMLError``: the known causes get their remedy."""
    for name, text in _EXPLANATIONS.items():
        if getattr(error, "value", None) == getattr(nvml, f"NVML_ERROR_{name}"):
            return text
    return f"NVML error: {error}"


def _query(source: str) -> GpuSnapshot:
    try:
        from gpustat.core import GPUStatCollection
        from gpustat.nvml import pynvml as nvml
    except ImportError as exc:
        return _unavailable(source, _import_reason(exc))
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return _unavailable(source, explain(exc, nvml))
    # Hold our own NVML reference across gpustat's init/shutdown pair (NVML counts them).
    try:
        driver = _text(_optional(nvml, nvml.nvmlSystemGetDriverVersion))
        cuda = _cuda_version(_optional(nvml, nvml.nvmlSystemGetCudaDriverVersion))
        if nvml.nvmlDeviceGetCount() == 0:
            return _unavailable(source, "NVML reports no NVIDIA device", driver, cuda)
        collection = GPUStatCollection.new_query()
    except nvml.NVMLError as exc:
        return _unavailable(source, explain(exc, nvml))
    except Exception as exc:  # noqa: BLE001 - telemetry must not take the worker down
        return _unavailable(source, f"GPU query failed: {type(exc).__name__}: {exc}")
    finally:
        with contextlib.suppress(nvml.NVMLError):
            nvml.nvmlShutdown()
    return GpuSnapshot(
        available=True,
        hostname=collection.hostname,
        taken_at=_now(),
        source=source,
        driver_version=_text(collection.driver_version) or driver,
        cuda_version=cuda,
        gpus=[_gpu(stat) for stat in collection],
    )


def _import_reason(exc: ImportError) -> str:
    return f"gpustat/nvidia-ml-py cannot be imported: {exc}"


def _optional(nvml: ModuleType, call: Any) -> Any:
    try:
        return call()
    except nvml.NVMLError:
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _cuda_version(encoded: int | None) -> str | None:
    # NVML encodes CUDA versions as 1000 * major + 10 * minor.
    if not encoded:
        return None
    return f"{encoded // 1000}.{encoded % 1000 // 10}"


def _int(value: Any) -> int | None:
    return None if value is None or value == "?" else int(value)


def _known(value: Any) -> str | None:
    # gpustat writes "?" where psutil could not read a value.
    return None if value in (None, "?", "") else str(value)


def _gpu(stat: Any) -> Gpu:
    if not stat.available:  # gpustat's InvalidGPU: the device failed as a whole
        return Gpu(index=int(stat.index), ok=False, error=str(stat.exception))
    entry = stat.entry
    processes = entry["processes"]
    return Gpu(
        index=int(entry["index"]),
        ok=True,
        uuid=_known(entry["uuid"]),
        name=_known(entry["name"]),
        temperature_c=_int(entry["temperature.gpu"]),
        fan_percent=_int(entry["fan.speed"]),
        power_draw_w=_int(entry["power.draw"]),
        power_limit_w=_int(entry["enforced.power.limit"]),
        utilization_percent=_int(entry["utilization.gpu"]),
        memory_used_mib=_int(entry["memory.used"]),
        memory_total_mib=_int(entry["memory.total"]),
        processes=None
        if processes is None
        else [
            GpuProcess(
                pid=int(process["pid"]),
                user=_known(process.get("username")),
                command=_known(process.get("command")),
                gpu_memory_mib=_int(process.get("gpu_memory_usage")),
            )
            for process in processes
        ],
    )
