"""scripts/gpu-device-check.sh (run by hand on a GPU host): it parses and runs every check."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "gpu-device-check.sh"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_script_parses() -> None:
    result = subprocess.run(
        ["bash", "-n", str(SCRIPT)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr


def test_script_runs_every_check() -> None:
    text = SCRIPT.read_text()
    for check in (
        "nvidia-smi",
        '"${KEEL[@]}" gpu\n',
        '"${KEEL[@]}" gpu --json',
        "snapshot(settings)",
        '"kind": "gpu.probe"',
        "-m pytest tests/unit/gpu",
    ):
        assert check in text, check
    assert "TODO" not in text
