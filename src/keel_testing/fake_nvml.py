"""A fake NVML for hosts without a GPU: fake ``pynvml`` functions, selected by ``GPU_FAKE_NVML``.

The fake replaces only the ``pynvml`` functions that gpustat calls and returns the same ctypes
structures and raises the same ``NVMLError`` subclasses as the real library, so gpustat's own
parsing (and psutil's process lookup) runs unchanged in tests. A fixture is JSON; see
``nvml_fixtures/*.json`` and docs/gpu.md. Units in fixtures are the ones people read (MiB, W);
the fake converts them to what NVML returns (bytes, mW).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import msgspec

from keel.gpu.snapshot import NVML_LOCK

FIXTURE_DIR = Path(__file__).parent / "nvml_fixtures"
MIB = 1024 * 1024

# The pynvml functions gpustat 1.1 calls (gpustat/core.py), plus the CUDA version query.
FAKED_FUNCTIONS = (
    "nvmlInit",
    "nvmlShutdown",
    "nvmlSystemGetDriverVersion",
    "nvmlSystemGetCudaDriverVersion",
    "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetIndex",
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetFanSpeed",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetEncoderUtilization",
    "nvmlDeviceGetDecoderUtilization",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetComputeRunningProcesses",
    "nvmlDeviceGetGraphicsRunningProcesses",
)


class FixtureError(ValueError):
    """A GPU_FAKE_NVML fixture that cannot be used; the message names the file and the field."""


class FakeProcess(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # "self" is the test process itself, so psutil finds a real process to describe.
    pid: int | Literal["self"]
    used_memory_mib: int | None = None


class FakeDevice(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    uuid: str
    # A reading left null makes its NVML call raise NotSupported, as the real library does.
    temperature_c: int | None = None
    fan_percent: int | None = None
    power_draw_w: float | None = None
    power_limit_w: float | None = None
    utilization_gpu: int | None = None
    utilization_memory: int | None = None
    encoder_percent: int | None = None
    decoder_percent: int | None = None
    memory_total_mib: int | None = None
    memory_used_mib: int | None = None
    compute_processes: list[FakeProcess] | None = msgspec.field(default_factory=list)
    graphics_processes: list[FakeProcess] | None = msgspec.field(default_factory=list)
    # NVML function name -> NVML error name (the NVML_ERROR_* suffix, e.g. "GPU_IS_LOST").
    errors: dict[str, str] = msgspec.field(default_factory=dict)


class FakeNvml(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    description: str = ""
    # Set to an NVML error name to make nvmlInit fail (e.g. "LIBRARY_NOT_FOUND").
    init_error: str | None = None
    driver_version: str | None = "550.54.15"
    # NVML's encoding: 1000 * major + 10 * minor (12040 is CUDA 12.4).
    cuda_driver_version: int | None = 12040
    devices: list[FakeDevice] = msgspec.field(default_factory=list)


def fixture_names() -> list[str]:
    return sorted(path.stem for path in FIXTURE_DIR.glob("*.json"))


def resolve_fixture(value: str, root: Path) -> Path:
    """A bundled fixture name (``h100x8``) or a JSON file path (relative to ``root``)."""
    if value in fixture_names():
        return FIXTURE_DIR / f"{value}.json"
    path = Path(value)
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        raise FixtureError(
            f"GPU_FAKE_NVML={value!r}: no such file {path} and not a bundled fixture "
            f"(bundled: {', '.join(fixture_names())})"
        )
    return path


def load_fixture(path: Path) -> FakeNvml:
    try:
        fake = msgspec.json.decode(path.read_bytes(), type=FakeNvml)
    except OSError as exc:
        raise FixtureError(f"GPU_FAKE_NVML fixture {path}: cannot read: {exc.strerror}") from exc
    except msgspec.DecodeError as exc:  # ValidationError included; its text names the field
        raise FixtureError(f"GPU_FAKE_NVML fixture {path}: {exc}") from exc
    problems = _check_errors(fake)
    if problems:
        raise FixtureError(f"GPU_FAKE_NVML fixture {path}: " + "; ".join(problems))
    return fake


def _pynvml() -> ModuleType:
    # The module object gpustat itself uses (gpustat.nvml patches it on import).
    from gpustat.nvml import pynvml

    module: ModuleType = pynvml
    return module


def _check_errors(fake: FakeNvml) -> list[str]:
    nvml = _pynvml()
    problems: list[str] = []
    names = [("$.init_error", fake.init_error)] if fake.init_error else []
    for index, device in enumerate(fake.devices):
        for function, error in device.errors.items():
            where = f"$.devices[{index}].errors"
            if function not in FAKED_FUNCTIONS:
                problems.append(f"{where}: {function!r} is not an NVML call gpustat makes")
            names.append((f"{where}.{function}", error))
    problems.extend(
        f"{where}: unknown NVML error {error!r} (use a NVML_ERROR_* suffix like GPU_IS_LOST)"
        for where, error in names
        if not isinstance(getattr(nvml, f"NVML_ERROR_{error}", None), int)
    )
    return problems


class _Handle:
    """Stands in for an ``nvmlDevice_t``; NVML handles are opaque to gpustat."""

    def __init__(self, index: int, device: FakeDevice) -> None:
        self.index = index
        self.device = device


class _FakeLibrary:
    def __init__(self, fake: FakeNvml, nvml: ModuleType) -> None:
        self.fake = fake
        self.nvml = nvml
        self.initialised = 0

    def error(self, name: str) -> Exception:
        error: Exception = self.nvml.NVMLError(getattr(self.nvml, f"NVML_ERROR_{name}"))
        return error

    def check_init(self) -> None:
        if self.initialised <= 0:
            raise self.error("UNINITIALIZED")

    def device_call(self, function: str, read: Callable[[_Handle], Any]) -> Callable[..., Any]:
        def call(handle: _Handle, *_args: Any, **_kwargs: Any) -> Any:
            self.check_init()
            error = handle.device.errors.get(function)
            if error:
                raise self.error(error)
            value = read(handle)
            if value is None:
                raise self.error("NOT_SUPPORTED")
            return value

        call.__name__ = function
        return call

    # --- system -------------------------------------------------------------------------------
    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        if self.fake.init_error:
            raise self.error(self.fake.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.check_init()
        self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802
        self.check_init()
        if self.fake.driver_version is None:
            raise self.error("NOT_SUPPORTED")
        return self.fake.driver_version

    def nvmlSystemGetCudaDriverVersion(self) -> int:  # noqa: N802
        self.check_init()
        if self.fake.cuda_driver_version is None:
            raise self.error("NOT_SUPPORTED")
        return self.fake.cuda_driver_version

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        self.check_init()
        return len(self.fake.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:  # noqa: N802
        self.check_init()
        if not 0 <= index < len(self.fake.devices):
            raise self.error("INVALID_ARGUMENT")
        device = self.fake.devices[index]
        error = device.errors.get("nvmlDeviceGetHandleByIndex")
        if error:
            raise self.error(error)
        return _Handle(index, device)

    # --- structures as NVML returns them ----------------------------------------------------
    def memory(self, device: FakeDevice) -> Any:
        if device.memory_total_mib is None or device.memory_used_mib is None:
            return None
        total, used = device.memory_total_mib * MIB, device.memory_used_mib * MIB
        memory = self.nvml.c_nvmlMemory_v2_t()
        memory.total, memory.used, memory.free = total, used, max(total - used, 0)
        return memory

    def utilization(self, device: FakeDevice) -> Any:
        if device.utilization_gpu is None:
            return None
        rates = self.nvml.c_nvmlUtilization_t()
        rates.gpu, rates.memory = device.utilization_gpu, device.utilization_memory or 0
        return rates

    def processes(self, listed: list[FakeProcess] | None) -> list[Any] | None:
        if listed is None:
            return None
        result = []
        for process in listed:
            info = self.nvml.c_nvmlProcessInfo_v3_t()
            info.pid = os.getpid() if process.pid == "self" else process.pid
            if process.used_memory_mib is None:
                info.usedGpuMemory = self.nvml.NVML_VALUE_NOT_AVAILABLE_ulonglong.value
            else:
                info.usedGpuMemory = process.used_memory_mib * MIB
            # What pynvml's nvmlDeviceGet*RunningProcesses return: friendly objects, with
            # "not available" memory turned into None.
            friendly = self.nvml.nvmlStructToFriendlyObject(info)
            if process.used_memory_mib is None:
                friendly.usedGpuMemory = None
            result.append(friendly)
        return result

    def functions(self) -> dict[str, Callable[..., Any]]:
        def milliwatts(watts: float | None) -> int | None:
            return None if watts is None else round(watts * 1000)

        def sampled(percent: int | None) -> list[int] | None:
            # NVML returns [utilisation, sampling period in microseconds].
            return None if percent is None else [percent, 167000]

        readers: dict[str, Callable[[_Handle], Any]] = {
            "nvmlDeviceGetIndex": lambda h: h.index,
            "nvmlDeviceGetName": lambda h: h.device.name,
            "nvmlDeviceGetUUID": lambda h: h.device.uuid,
            "nvmlDeviceGetTemperature": lambda h: h.device.temperature_c,
            "nvmlDeviceGetFanSpeed": lambda h: h.device.fan_percent,
            "nvmlDeviceGetMemoryInfo": lambda h: self.memory(h.device),
            "nvmlDeviceGetUtilizationRates": lambda h: self.utilization(h.device),
            "nvmlDeviceGetEncoderUtilization": lambda h: sampled(h.device.encoder_percent),
            "nvmlDeviceGetDecoderUtilization": lambda h: sampled(h.device.decoder_percent),
            "nvmlDeviceGetPowerUsage": lambda h: milliwatts(h.device.power_draw_w),
            "nvmlDeviceGetEnforcedPowerLimit": lambda h: milliwatts(h.device.power_limit_w),
            "nvmlDeviceGetComputeRunningProcesses": (
                lambda h: self.processes(h.device.compute_processes)
            ),
            "nvmlDeviceGetGraphicsRunningProcesses": (
                lambda h: self.processes(h.device.graphics_processes)
            ),
        }
        return {
            "nvmlInit": self.nvmlInit,
            "nvmlShutdown": self.nvmlShutdown,
            "nvmlSystemGetDriverVersion": self.nvmlSystemGetDriverVersion,
            "nvmlSystemGetCudaDriverVersion": self.nvmlSystemGetCudaDriverVersion,
            "nvmlDeviceGetCount": self.nvmlDeviceGetCount,
            "nvmlDeviceGetHandleByIndex": self.nvmlDeviceGetHandleByIndex,
            **{name: self.device_call(name, read) for name, read in readers.items()},
        }


@contextmanager
def installed(fake: FakeNvml) -> Iterator[None]:
    """Swap the pynvml functions gpustat calls for the fake ones, for the ``with`` body."""
    nvml = _pynvml()
    library = _FakeLibrary(fake, nvml)
    with NVML_LOCK:
        saved = {name: getattr(nvml, name) for name in FAKED_FUNCTIONS}
        try:
            for name, function in library.functions().items():
                setattr(nvml, name, function)
            yield
        finally:
            for name, function in saved.items():
                setattr(nvml, name, function)
