"""``keel gpu``: what an operator sees, and the ``--json`` schema scripts rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from _nvml_host import nvml_loadable
from tests.support import REPO, with_test_support

from keel.cli import main
from keel.gpu import GpuSnapshot

SCHEMA_FILE = REPO / "docs" / "gpu-snapshot.schema.json"

SNAPSHOT_KEYS = {
    "schema_version",
    "available",
    "reason",
    "hostname",
    "taken_at",
    "source",
    "driver_version",
    "cuda_version",
    "gpus",
}
GPU_KEYS = {
    "index",
    "ok",
    "error",
    "uuid",
    "name",
    "temperature_c",
    "fan_percent",
    "power_draw_w",
    "power_limit_w",
    "utilization_percent",
    "memory_used_mib",
    "memory_total_mib",
    "processes",
}
PROCESS_KEYS = {"pid", "user", "command", "gpu_memory_mib"}

# keel_gpu(*args, fake=fixture-or-None) -> (exit code, stdout, stderr)
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def keel_gpu(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    monkeypatch.setenv("KEEL_ROOT", str(REPO))
    monkeypatch.delenv("APP_ENV", raising=False)

    def run(*args: str, fake: str | None = None) -> tuple[int, str, str]:
        if fake is None:
            monkeypatch.delenv("GPU_FAKE_NVML", raising=False)
        else:
            monkeypatch.setenv("GPU_FAKE_NVML", fake)
        code = main(["gpu", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_no_gpu_exits_zero_with_the_message(keel_gpu: Run) -> None:
    code, out, _ = keel_gpu(fake="none")

    assert code == 0
    assert "no NVIDIA GPU visible: NVML reports no NVIDIA device" in out


@pytest.mark.skipif(nvml_loadable(), reason="needs a host without libnvidia-ml (no NVIDIA driver)")
def test_real_host_without_driver_exits_zero(keel_gpu: Run) -> None:
    code, out, _ = keel_gpu()

    assert code == 0
    assert "no NVIDIA GPU visible" in out
    assert "libnvidia-ml.so.1" in out


def test_table_lists_gpus_and_processes(keel_gpu: Run) -> None:
    code, out, _ = keel_gpu(fake="h100x1")

    assert code == 0
    lines = out.splitlines()
    assert "driver 550.54.15" in lines[0]
    assert "CUDA 12.4" in lines[0]
    assert "[fake:h100x1]" in lines[0]
    gpu_header = lines.index(next(line for line in lines if line.startswith("GPU  NAME")))
    row = lines[gpu_header + 1].split()
    assert row[:5] == ["0", "NVIDIA", "H100", "80GB", "HBM3"]
    assert "41C" in row
    assert "87%" in row
    assert "30722 / 81559 MiB" in lines[gpu_header + 1]
    assert "312 / 700 W" in lines[gpu_header + 1]
    process_row = next(line for line in lines if line.startswith(f"0    {os.getpid()}"))
    assert "30720 MiB" in process_row


def test_table_shows_failed_devices(keel_gpu: Run) -> None:
    code, out, _ = keel_gpu(fake="gpu-lost")

    assert code == 0
    assert "1    FAILED: GPU is lost" in out


def test_eight_gpus_eight_rows(keel_gpu: Run) -> None:
    _, out, _ = keel_gpu(fake="h100x8")

    assert sum(line.endswith("/ 81559 MiB") for line in out.splitlines()) == 8


def test_json_schema_is_stable(keel_gpu: Run) -> None:
    code, out, _ = keel_gpu("--json", fake="h100x1")

    assert code == 0
    doc = json.loads(out)
    assert set(doc) == SNAPSHOT_KEYS
    assert doc["schema_version"] == 1
    assert doc["available"] is True
    assert doc["taken_at"].endswith("Z")
    (gpu,) = doc["gpus"]
    assert set(gpu) == GPU_KEYS
    assert set(gpu["processes"][0]) == PROCESS_KEYS
    # The committed JSON Schema (docs) is what the code emits.
    assert json.loads(SCHEMA_FILE.read_text()) == msgspec.json.schema(GpuSnapshot)


def test_json_without_gpu(keel_gpu: Run) -> None:
    code, out, _ = keel_gpu("--json", fake="no-library")

    assert code == 0
    doc = json.loads(out)
    assert set(doc) == SNAPSHOT_KEYS
    assert doc["available"] is False
    assert doc["gpus"] == []
    assert "libnvidia-ml.so.1" in doc["reason"]


def test_watch_json_prints_one_document_per_line(keel_gpu: Run) -> None:
    code, out, _ = keel_gpu("--watch", "0.05", "--count", "3", "--json", fake="failing-device")

    assert code == 0
    docs = [msgspec.json.decode(line, type=GpuSnapshot) for line in out.splitlines()]
    assert len(docs) == 3
    assert docs[0].taken_at < docs[1].taken_at < docs[2].taken_at


def test_watch_table_repeats(keel_gpu: Run) -> None:
    code, out, _ = keel_gpu("--watch", "0.05", "--count", "2", fake="none")

    assert code == 0
    assert out.count("no NVIDIA GPU visible") == 2


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_watch_needs_positive_seconds(keel_gpu: Run, value: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        keel_gpu("--watch", value, fake="none")

    assert exit_info.value.code == 2


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_watch_count_needs_a_positive_whole_number(keel_gpu: Run, value: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        keel_gpu("--watch", "0.05", "--count", value, fake="none")

    assert exit_info.value.code == 2


def test_count_without_watch_is_refused(keel_gpu: Run) -> None:
    code, out, err = keel_gpu("--count", "2", fake="none")

    assert code == 2
    assert out == ""
    assert "--count goes with --watch" in err


def test_broken_fixture_fails_loudly(keel_gpu: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"devices": 3}')

    code, out, err = keel_gpu(fake=str(bad))

    assert code == 2
    assert out == ""
    assert str(bad) in err
    assert "$.devices" in err


def test_console_entrypoint(tmp_path: Path) -> None:
    env = with_test_support({**os.environ, "KEEL_ROOT": str(REPO), "GPU_FAKE_NVML": "none"})
    env.pop("APP_ENV", None)

    result = subprocess.run(
        [sys.executable, "-m", "keel.cli", "gpu"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "no NVIDIA GPU visible" in result.stdout
