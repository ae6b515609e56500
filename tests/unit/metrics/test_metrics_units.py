"""Metric pieces that need no server: batching, label classes, import order, the proxy."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from keel.metrics import families, hooks, multiproc
from keel.metrics.http import HttpStats

REPO = Path(__file__).resolve().parents[3]


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_batched_http_stats_equal_direct_observations() -> None:
    durations = [0.0004, 0.003, 0.003, 0.07, 2.0, 30.0]

    async def record() -> None:
        stats = HttpStats()
        for seconds in durations:
            stats.record("GET", "/t/batched", 200, seconds)
        stats.record("GET", "/t/batched", 503, 0.01)
        stats.flush()

    asyncio.run(record())
    for seconds in [*durations, 0.01]:
        families.HTTP_DURATION.labels("GET", "/t/direct").observe(seconds)

    for le in ("0.001", "0.005", "0.1", "2.5", "10.0", "+Inf"):
        batched = _sample(
            "keel_http_request_duration_seconds_bucket", method="GET", route="/t/batched", le=le
        )
        direct = _sample(
            "keel_http_request_duration_seconds_bucket", method="GET", route="/t/direct", le=le
        )
        assert batched == direct, le
    assert _sample(
        "keel_http_request_duration_seconds_sum", method="GET", route="/t/batched"
    ) == pytest.approx(sum(durations) + 0.01)
    assert (
        _sample("keel_http_requests_total", method="GET", route="/t/batched", status_class="2xx")
        == 6
    )
    assert (
        _sample("keel_http_requests_total", method="GET", route="/t/batched", status_class="5xx")
        == 1
    )


def test_every_auth_refusal_reason_has_a_bounded_class() -> None:
    """Reasons are free text in the log; the label is one of a few words, never the text."""
    reasons = set()
    for path in (REPO / "src" / "keel" / "auth").glob("*.py"):
        text = path.read_text()
        reasons |= set(re.findall(r'CredentialError\(f?"([^"]+)"', text))
        reasons |= set(re.findall(r'_refuse\(request, "([^"]+)"', text))
    assert len(reasons) > 15
    allowed = {
        "expired",
        "revoked",
        "replayed",
        "stale_timestamp",
        "bad_signature",
        "ambiguous",
        "not_allowed",
        "malformed",
        "rate_limited",
        "invalid",
    }
    classes = {reason: hooks.auth_reason_class(reason) for reason in reasons}
    assert set(classes.values()) <= allowed
    assert classes["token revoked"] == "revoked"
    assert classes["nonce replayed"] == "replayed"
    assert hooks.auth_reason_class("rejected by python-jose: ExpiredSignatureError") == "expired"
    assert hooks.auth_reason_class("rate limited") == "rate_limited"


def test_multiprocess_dir_must_come_before_the_import(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Here prometheus_client is imported already (this module did): too late to switch modes.
    monkeypatch.delenv(multiproc.ENV, raising=False)
    assert multiproc.prepare("api") is None
    assert multiproc.ENV not in os.environ
    assert "imported before PROMETHEUS_MULTIPROC_DIR was set" in capsys.readouterr().err


def test_fresh_multiprocess_dir_in_a_new_process(tmp_path: Path) -> None:
    code = (
        "import os, sys; from keel.metrics import multiproc; p = multiproc.prepare('api'); "
        "print(p, os.environ['PROMETHEUS_MULTIPROC_DIR'] == p, os.listdir(p)); "
        "from prometheus_client import values; print(values.ValueClass.__name__)"
    )
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    path, same, listing = done.stdout.splitlines()[0].split(" ", 2)
    assert same == "True"
    assert listing == "[]"
    assert path.startswith(str(tmp_path / "keel-metrics-api-"))
    assert done.stdout.splitlines()[1] == "MmapedValue"
    assert not Path(path).exists(), "removed when the process exits"


def test_prod_proxy_refuses_metrics_before_the_catch_all() -> None:
    conf = (REPO / "configs" / "prod" / "nginx.conf").read_text()
    blocks = re.findall(r"location\s+([^{]+)\{([^}]*)\}", conf)
    paths = [where.strip() for where, _ in blocks]
    # `^~` wins over every regex location and over the shorter `/` prefix.
    assert "^~ /metrics" in paths
    body = dict((w.strip(), b) for w, b in blocks)["^~ /metrics"]
    assert re.search(r"return\s+404\s*;", body)
    assert "proxy_pass" not in body


def test_gpu_gauges_from_heartbeat_snapshots() -> None:
    import datetime as dt

    import msgspec

    from keel.config import load
    from keel.gpu import snapshot
    from keel.metrics.state import _gpu_families
    from keel.tasks.heartbeat import Heartbeat

    settings = load("local", root=REPO, environ={"GPU_FAKE_NVML": "h100x1"})
    snap = msgspec.to_builtins(snapshot(settings))
    now = dt.datetime.now(dt.UTC)

    def beat(worker: str) -> Heartbeat:
        return Heartbeat(
            worker_id=worker,
            hostname="gpu-host",
            pid=1,
            queues=["gpu"],
            in_flight=0,
            started_at=now,
            beat_at=now,
            gpu=snap,
        )

    # Two workers on one host see the same GPU: it is reported once.
    families = {f.name: f for f in _gpu_families([beat("a"), beat("b")])}
    gpu = snap["gpus"][0]
    used = families["keel_gpu_memory_used_bytes"].samples
    assert len(used) == 1
    assert used[0].labels == {"hostname": "gpu-host", "gpu": "0", "name": gpu["name"]}
    assert used[0].value == gpu["memory_used_mib"] * (1 << 20)
    temperature = families["keel_gpu_temperature_celsius"].samples[0].value
    assert temperature == gpu["temperature_c"]
    utilization = families["keel_gpu_utilization_percent"].samples[0].value
    assert utilization == gpu["utilization_percent"]


def test_directories_of_dead_processes_are_wiped_at_start(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_pid = int(gone.stdout)
    orphan = tmp_path / f"keel-metrics-api-{dead_pid}-abc"
    orphan.mkdir()
    (orphan / "counter_1.db").write_bytes(b"old counts")
    alive = tmp_path / f"keel-metrics-worker-{os.getpid()}-def"  # this test process: alive
    alive.mkdir()
    code = "from keel.metrics import multiproc; print(multiproc.prepare('api'))"
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    assert not orphan.exists()
    assert alive.exists()
