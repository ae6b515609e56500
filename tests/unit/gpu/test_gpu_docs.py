"""docs/gpu.md stays runnable: its ``keel gpu`` commands parse and run against the fake NVML."""

from __future__ import annotations

import re
import shlex

import pytest
from tests.support import REPO

from keel.cli import build_parser, main
from keel_testing.fake_nvml import fixture_names

DOC = (REPO / "docs" / "gpu.md").read_text()
SHELL_LINES = [
    line.split("  #")[0].strip()
    for block in re.findall(r"```sh[^\n]*\n(.*?)```", DOC, flags=re.DOTALL)
    for line in block.splitlines()
]
KEEL_GPU = [
    line.replace("uv run keel", "keel", 1)
    for line in SHELL_LINES
    if re.match(r"^(GPU_FAKE_NVML=\S+ )?uv run keel gpu", line)
]


def test_doc_has_keel_gpu_commands() -> None:
    assert len(KEEL_GPU) >= 6


@pytest.mark.parametrize("line", KEEL_GPU)
def test_documented_command_runs(
    line: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    words = shlex.split(line)
    fake = "none"
    if words[0].startswith("GPU_FAKE_NVML="):
        fake = words.pop(0).split("=", 1)[1]
    args = words[1:]
    build_parser().parse_args(args)  # every documented flag exists
    if "--watch" in args and "--count" not in args:
        args += ["--count", "1"]  # the documented loop runs until Ctrl-C
    monkeypatch.setenv("KEEL_ROOT", str(REPO))
    monkeypatch.delenv("APP_ENV", raising=False)
    monkeypatch.setenv("GPU_FAKE_NVML", fake)

    assert main(args) == 0
    assert capsys.readouterr().out


def test_documented_fixtures_exist() -> None:
    section = DOC.split("Bundled\nfixtures", 1)[1].split("```", 1)[0]
    named = set(re.findall(r"`([a-z0-9-]+)`", section))
    assert named == set(fixture_names())
