"""Snapshot parsing through the real gpustat code against the fake NVML (0, 1, 8 GPUs, faults)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import psutil  # type: ignore[import-untyped]
import pytest
from _nvml_host import nvml_loadable
from tests.support import with_test_support

from keel.config import Settings
from keel.config.sections.gpu import GpuSettings
from keel.gpu import GpuSnapshot, NoGpuError, has_gpu, require_gpu, snapshot
from keel_testing.fake_nvml import FAKED_FUNCTIONS, fixture_names

NO_NVML_HOST = not nvml_loadable()


def fake(name: str, root: Path | None = None) -> Settings:
    return Settings(gpu=GpuSettings(fake_nvml=name), root=root or Path.cwd())


@pytest.fixture(scope="module")
def eight() -> GpuSnapshot:
    return snapshot(fake("h100x8"))


def test_bundled_fixtures_cover_the_cases() -> None:
    assert {"none", "h100x1", "h100x8", "failing-device", "gpu-lost"} <= set(fixture_names())


def test_one_gpu_reads_every_field() -> None:
    snap = snapshot(fake("h100x1"))

    assert snap.available
    assert snap.reason is None
    assert snap.source == "fake:h100x1"
    assert (snap.driver_version, snap.cuda_version) == ("550.54.15", "12.4")
    (gpu,) = snap.gpus
    assert gpu.ok
    assert gpu.index == 0
    assert gpu.name == "NVIDIA H100 80GB HBM3"
    assert gpu.uuid == "GPU-5e1a0c2d-8f3b-4c6e-9a7d-000000000000"
    assert gpu.temperature_c == 41
    assert gpu.fan_percent is None  # passive datacenter card: NVML says Not Supported
    assert (gpu.power_draw_w, gpu.power_limit_w) == (312, 700)
    assert gpu.utilization_percent == 87
    assert (gpu.memory_used_mib, gpu.memory_total_mib) == (30722, 81559)


def test_processes_are_described_by_psutil_and_exited_ones_dropped() -> None:
    (gpu,) = snapshot(fake("h100x1")).gpus
    me = psutil.Process()

    # The fixture lists this process and pid 4194304 (above any Linux pid_max): gone, dropped.
    assert gpu.processes is not None
    (process,) = gpu.processes
    assert process.pid == os.getpid()
    assert process.user == me.username()
    assert process.command == os.path.basename(me.cmdline()[0])
    assert process.gpu_memory_mib == 30720


def test_eight_gpus_in_index_order(eight: GpuSnapshot) -> None:
    assert eight.available
    assert [gpu.index for gpu in eight.gpus] == list(range(8))
    assert len({gpu.uuid for gpu in eight.gpus}) == 8
    assert all(gpu.ok for gpu in eight.gpus)
    busy = [gpu.index for gpu in eight.gpus if gpu.processes]
    assert busy == [0, 1, 5]
    # The driver did not account GPU 5's process memory: unknown, not zero.
    assert eight.gpus[5].processes is not None
    assert eight.gpus[5].processes[0].gpu_memory_mib is None


def test_no_device_is_a_typed_no_gpu_result() -> None:
    snap = snapshot(fake("none"))

    assert not snap.available
    assert snap.gpus == []
    assert snap.reason == "NVML reports no NVIDIA device"
    assert snap.driver_version == "550.54.15"  # the driver answered; it just has no device
    assert not has_gpu(fake("none"))


def test_missing_library_is_explained() -> None:
    snap = snapshot(fake("no-library"))

    assert not snap.available
    assert snap.reason is not None
    assert "libnvidia-ml.so.1 not found" in snap.reason
    assert "container toolkit" in snap.reason


def test_driver_library_mismatch_is_explained() -> None:
    snap = snapshot(fake("driver-mismatch"))

    assert not snap.available
    assert snap.reason is not None
    assert "Failed to initialize NVML: Driver/library version mismatch" in snap.reason
    assert "reboot" in snap.reason


def test_failing_device_keeps_the_others() -> None:
    snap = snapshot(fake("failing-device"))

    assert snap.available
    first, second = snap.gpus
    assert first.ok
    assert first.name == "Tesla T4"
    assert first.temperature_c is None
    assert first.power_draw_w is None
    assert first.power_limit_w == 70
    assert first.processes is None  # the driver cannot list them: unknown, not "none"
    assert not second.ok
    assert second.index == 1
    assert second.error == "Unknown Error"
    assert has_gpu(fake("failing-device"))


def test_lost_gpu_is_reported_not_raised() -> None:
    snap = snapshot(fake("gpu-lost"))

    assert [gpu.ok for gpu in snap.gpus] == [True, False]
    assert snap.gpus[1].error == "GPU is lost"
    assert [gpu.index for gpu in snap.healthy_gpus] == [0]


def test_only_lost_gpus_means_no_usable_gpu(tmp_path: Path) -> None:
    lost = {"nvmlDeviceGetHandleByIndex": "GPU_IS_LOST"}
    device = {"name": "NVIDIA A100-SXM4-40GB", "uuid": "GPU-1", "errors": lost}
    (tmp_path / "lost.json").write_text(json.dumps({"devices": [device]}))
    settings = fake("lost.json", root=tmp_path)

    snap = snapshot(settings)
    assert snap.available
    assert snap.source == "fake:lost"
    assert not has_gpu(settings)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"devices": [{"name": "x", "uuid": "u", "tempreature_c": 3}]}', "tempreature_c"),
        ('{"init_error": "NO_SUCH_ERROR"}', "unknown NVML error 'NO_SUCH_ERROR'"),
        (
            '{"devices": [{"name": "x", "uuid": "u",'
            ' "errors": {"nvmlDeviceGetClock": "UNKNOWN"}}]}',
            "'nvmlDeviceGetClock' is not an NVML call gpustat makes",
        ),
        ("{not json", "malformed"),
    ],
)
def test_broken_fixture_becomes_a_reason_naming_file_and_field(
    tmp_path: Path, content: str, expected: str
) -> None:
    (tmp_path / "bad.json").write_text(content)

    snap = snapshot(fake("bad.json", root=tmp_path))

    assert not snap.available
    assert snap.reason is not None
    assert str(tmp_path / "bad.json") in snap.reason
    assert expected in snap.reason


def test_unknown_fixture_name_lists_the_bundled_ones(tmp_path: Path) -> None:
    snap = snapshot(fake("h100x9", root=tmp_path))

    assert snap.reason is not None
    assert "h100x9" in snap.reason
    assert "h100x8" in snap.reason


def test_fake_is_removed_after_the_query() -> None:
    from gpustat.nvml import pynvml

    before = {name: getattr(pynvml, name) for name in FAKED_FUNCTIONS}
    snapshot(fake("h100x1"))
    assert {name: getattr(pynvml, name) for name in FAKED_FUNCTIONS} == before


def test_snapshot_round_trips_through_json(eight: GpuSnapshot) -> None:
    assert msgspec.json.decode(msgspec.json.encode(eight), type=GpuSnapshot) == eight


@pytest.mark.skipif(not NO_NVML_HOST, reason="needs a host without libnvidia-ml (no NVIDIA driver)")
def test_real_nvml_on_a_host_without_driver() -> None:
    snap = snapshot(Settings())

    assert not snap.available
    assert snap.source == "nvml"
    assert snap.reason is not None
    assert "libnvidia-ml.so.1 not found" in snap.reason
    assert not has_gpu(Settings())


@pytest.mark.parametrize("fake_nvml", ["", "h100x1"])
def test_missing_nvml_bindings_never_raise(fake_nvml: str) -> None:
    # A host whose Python lacks nvidia-ml-py: importing keel.gpu and calling snapshot() still works.
    code = (
        "import sys; sys.modules['pynvml'] = None\n"
        "from keel.config import Settings\n"
        "from keel.config.sections.gpu import GpuSettings\n"
        "from keel.gpu import snapshot\n"
        f"snap = snapshot(Settings(gpu=GpuSettings(fake_nvml={fake_nvml!r})))\n"
        "print(snap.available, snap.reason)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=with_test_support(os.environ),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("False gpustat/nvidia-ml-py cannot be imported")


def test_require_gpu_returns_the_snapshot_or_says_why_not() -> None:
    assert require_gpu(fake("h100x1")).gpus[0].ok

    with pytest.raises(NoGpuError, match=r"^no NVIDIA GPU visible on .+: NVML reports no NVIDIA"):
        require_gpu(fake("none"))


def test_require_gpu_names_the_failed_devices(tmp_path: Path) -> None:
    device = {"name": "x", "uuid": "u", "errors": {"nvmlDeviceGetHandleByIndex": "GPU_IS_LOST"}}
    (tmp_path / "lost.json").write_text(json.dumps({"devices": [device]}))

    with pytest.raises(NoGpuError, match="GPU 0: GPU is lost") as raised:
        require_gpu(fake("lost.json", root=tmp_path))
    assert raised.value.snapshot.available


def test_the_fake_nvml_is_not_part_of_the_shipped_package() -> None:
    import tomllib

    from keel.config import load

    pyproject = tomllib.loads((Path(__file__).resolve().parents[3] / "pyproject.toml").read_text())
    assert pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/keel"]
    keel_dir = Path(load.__code__.co_filename).resolve().parents[1]
    assert not list(keel_dir.rglob("fake_nvml*")), "the fake NVML is back inside keel/"
    assert not list(keel_dir.rglob("*.json")), "fixtures are test support (src/keel_testing)"


def test_without_the_test_support_package_fake_gpus_are_reported_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from keel.gpu.snapshot import FAKE_LAYER_MISSING

    # What an image sees: keel_testing cannot be imported.
    monkeypatch.setitem(sys.modules, "keel_testing", None)
    monkeypatch.setitem(sys.modules, "keel_testing.fake_nvml", None)
    snap = snapshot(fake("h100x1"))
    assert not snap.available
    assert snap.reason == FAKE_LAYER_MISSING
    assert "keel_testing" in snap.reason
