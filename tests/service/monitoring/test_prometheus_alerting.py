"""Debian's real Prometheus and Alertmanager against real `keel serve` and `keel worker`.

Prometheus scrapes both exporters and evaluates configs/monitoring/rules.yml (with every `for:`
shortened to 2 s, so the test takes seconds, not minutes); Alertmanager delivers to a webhook
sink in this test. Checked: `up == 1` for each target, job counters move when jobs run, and
stopping the worker fires KeelNoLiveWorker, delivered to the webhook.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from keel.auth.runtime import build_runtime
from tests.service.conftest import FAST_TIMINGS, REPO, Proc, make_settings, wait_for
from tests.service.servers import free_port, wait_port

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None or ALERTMANAGER is None,
    reason="needs Debian's prometheus and prometheus-alertmanager (.ci/run installs them)",
)


class Sink:
    """A webhook receiver: every POST body Alertmanager sends, decoded."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                sink.posts.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def firing(self, alertname: str) -> list[dict[str, Any]]:
        return [
            alert
            for post in self.posts
            for alert in post.get("alerts", [])
            if alert["labels"].get("alertname") == alertname and alert["status"] == "firing"
        ]


@pytest.fixture
def sink() -> Iterator[Sink]:
    receiver = Sink()
    yield receiver
    receiver.server.shutdown()


def _daemon(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _query(port: int, expr: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": expr}, timeout=5)
    reply.raise_for_status()
    result: list[dict[str, Any]] = reply.json()["data"]["result"]
    return result


def test_real_prometheus_scrapes_and_alerts_on_a_stopped_worker(
    stack_env: dict[str, str], spawn: Callable[..., Proc], tmp_path: Path, sink: Sink
) -> None:
    assert PROMETHEUS is not None
    assert ALERTMANAGER is not None
    http_port, api_metrics, worker_metrics = free_port(), free_port(), free_port()
    prom_port, am_port = free_port(), free_port()
    env = {
        **stack_env,
        **FAST_TIMINGS,
        "HTTP_PORT": str(http_port),
        "HTTP_WORKERS": "2",
        "METRICS_PORT": str(api_metrics),
        "METRICS_WORKER_PORT": str(worker_metrics),
        "JWT_SECRET_KEY": "prometheus-e2e-signing-key-0123456789abcdef",
    }
    spawn(["serve"], env, name="api")
    worker = spawn(["worker", "--workers", "1"], env, name="worker")

    rules = (REPO / "configs" / "monitoring" / "rules.yml").read_text()
    (tmp_path / "rules.yml").write_text(re.sub(r"for: \d+m", "for: 2s", rules))
    (tmp_path / "alertmanager.yml").write_text(
        "route:\n"
        "  receiver: sink\n"
        "  group_by: [alertname, queue]\n"
        "  group_wait: 1s\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: sink\n"
        f"    webhook_configs: [{{url: 'http://127.0.0.1:{sink.port}/'}}]\n"
    )
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [rules.yml]\n"
        "alerting:\n"
        f"  alertmanagers: [{{static_configs: [{{targets: ['127.0.0.1:{am_port}']}}]}}]\n"
        "scrape_configs:\n"
        f"  - {{job_name: keel-api, static_configs: [{{targets: ['127.0.0.1:{api_metrics}']}}]}}\n"
        "  - job_name: keel-worker\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{worker_metrics}']}}]\n"
    )
    alertmanager = _daemon(
        [
            ALERTMANAGER,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
        tmp_path / "alertmanager.log",
    )
    prometheus = _daemon(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        tmp_path / "prometheus.log",
    )
    try:
        wait_port(am_port, 30, alertmanager, tmp_path / "alertmanager.log")
        wait_port(prom_port, 30, prometheus, tmp_path / "prometheus.log")

        def both_up() -> bool:
            ups = {r["metric"]["job"]: r["value"][1] for r in _query(prom_port, "up")}
            return ups == {"keel-api": "1", "keel-worker": "1"}

        wait_for(both_up, 90, "Prometheus to scrape the api and the worker", interval=0.5)

        def api_ready() -> bool:
            # The exporter (main process) answers before Granian's workers accept requests.
            try:
                url = f"http://127.0.0.1:{http_port}/health/ready"
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(api_ready, 60, "the api to be ready", interval=0.3)
        token = build_runtime(make_settings(env)).jwt.issue("1", "access", name="p").token
        auth = {"Authorization": f"Bearer {token}"}
        for _ in range(3):
            reply = httpx.post(
                f"http://127.0.0.1:{http_port}/api/jobs", json={"kind": "echo"}, headers=auth
            )
            assert reply.status_code == 202, reply.text

        def jobs_counted() -> bool:
            done = _query(prom_port, 'sum(keel_jobs_finished_total{outcome="succeeded"})')
            accepted = _query(prom_port, "sum(keel_jobs_accepted_total)")
            return bool(done and accepted) and (
                float(done[0]["value"][1]) == 3 and float(accepted[0]["value"][1]) == 3
            )

        wait_for(jobs_counted, 60, "job counters in Prometheus", interval=0.5)
        assert sink.firing("KeelNoLiveWorker") == []

        worker.stop()
        alerts = wait_for(
            lambda: sink.firing("KeelNoLiveWorker"), 90, "KeelNoLiveWorker at the webhook", 0.5
        )
        assert alerts[0]["labels"]["queue"] == "default"
        assert alerts[0]["labels"]["severity"] == "critical"
        assert alerts[0]["annotations"]["runbook"] == "docs/operations.md#alerts"
    finally:
        _stop(prometheus)
        _stop(alertmanager)
