"""On a real NVIDIA host only: the snapshot agrees with nvidia-smi. Skipped everywhere else."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from _nvml_host import nvml_loadable

from keel.config import Settings
from keel.gpu import has_gpu, snapshot

pytestmark = [
    pytest.mark.skipif(not nvml_loadable(), reason="needs an NVIDIA driver (libnvidia-ml.so.1)"),
    pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="needs nvidia-smi on PATH"),
]


def smi(*query: str) -> list[list[str]]:
    out = subprocess.run(
        ["nvidia-smi", f"--query-gpu={','.join(query)}", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [[cell.strip() for cell in line.split(",")] for line in out.splitlines() if line]


def test_snapshot_matches_nvidia_smi() -> None:
    snap = snapshot(Settings())
    rows = smi("index", "uuid", "name", "driver_version", "memory.total")

    assert snap.available, snap.reason
    assert snap.source == "nvml"
    assert snap.cuda_version is not None
    assert snap.driver_version == rows[0][3]
    assert [(g.index, g.uuid, g.name, g.memory_total_mib) for g in snap.gpus] == [
        (int(index), uuid, name, int(total)) for index, uuid, name, _, total in rows
    ]
    assert all(gpu.ok for gpu in snap.gpus)
    assert has_gpu(Settings())
