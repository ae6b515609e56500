"""gpu.probe through the fake NVML: a usable GPU returns the inventory; none fails clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.support import REPO, no_secrets, settings_for

from keel.config import Settings, load
from keel.domain.jobs.kinds import JobContext, JobFailedError, get_kind


def _context(tmp_path: Path, fixture: str) -> JobContext:
    settings = load(
        "local", root=REPO, environ={"GPU_FAKE_NVML": fixture}, secrets_reader=no_secrets
    )
    return JobContext(job_id=1, attempt=1, worker_id="w-test", settings=settings)


async def _probe(ctx: JobContext) -> object:
    kind = get_kind("gpu.probe")
    return await kind.run(kind.parse({}), ctx)


async def test_probe_returns_the_inventory_of_a_gpu_host(tmp_path: Path) -> None:
    result = await _probe(_context(tmp_path, "h100x1"))
    assert isinstance(result, dict)
    assert result["available"] is True
    assert [gpu["name"] for gpu in result["gpus"]] == ["NVIDIA H100 80GB HBM3"]


async def test_probe_fails_when_every_gpu_is_lost(tmp_path: Path) -> None:
    fixture = json.loads((REPO / "src/keel_testing/nvml_fixtures/gpu-lost.json").read_text())
    for device in fixture["devices"]:
        device["errors"] = {"nvmlDeviceGetName": "GPU_IS_LOST"}
    path = tmp_path / "all-lost.json"
    path.write_text(json.dumps(fixture))
    with pytest.raises(JobFailedError, match="no NVIDIA GPU visible on worker w-test"):
        await _probe(_context(tmp_path, str(path)))


def test_gpu_staleness_stays_below_the_heartbeat_ttl() -> None:
    from keel.gpu.routes import stale_after_seconds

    def settings(**env: str) -> Settings:
        return settings_for("local", env)

    assert stale_after_seconds(settings()) == 12.0
    short = settings(WORKER_HEARTBEAT_TTL="1.5")
    assert stale_after_seconds(short) == pytest.approx(1.2)
