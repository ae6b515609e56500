"""The monitoring overlay for real: Prometheus finds every api and worker replica by DNS and
scrapes it, job counters move, `keel doctor` in the api container finds nothing wrong, and
stopping the workers fires KeelNoLiveWorker, delivered by Alertmanager to a webhook sink
running in the stack. Its own project, torn down after.

The rules are the repository's with every `for:` shortened to 2 s and the intervals to 1 s (the
semantics of each rule are unit-tested by promtool in tests/unit/monitoring).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.stack import (
    Api,
    Stack,
    docker_available,
    image_exists,
    service_images,
    stage_key,
    wait_for,
)
from tests.support import REPO, free_port

KEEL_IMAGE = os.environ.get("KEEL_IMAGE", "keel:latest")
PROMETHEUS_IMAGE = os.environ.get("PROMETHEUS_IMAGE", "keel-offline/prometheus:2.42")
MONITORING = REPO / "configs" / "monitoring"

# A webhook receiver in the app image's Python: keeps every POST, answers GET with all of them.
_SINK = """
import http.server, json
posts = []
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        posts.append(json.loads(self.rfile.read(int(self.headers['Content-Length']))))
        self.send_response(200); self.end_headers()
    def do_GET(self):
        body = json.dumps(posts).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
http.server.ThreadingHTTPServer(('0.0.0.0', 8080), H).serve_forever()
"""


@pytest.fixture(scope="module", autouse=True)
def _needs_images() -> None:
    why = docker_available()
    if why:
        pytest.skip(f"needs Docker: {why}")
    for image, how in (
        (KEEL_IMAGE, "make image-docker"),
        (PROMETHEUS_IMAGE, "make images-offline"),
    ):
        if not image_exists(image):
            pytest.skip(f"needs the image {image}: run `{how}`")


@pytest.fixture
def monitored(tmp_path: Path) -> Iterator[tuple[Stack, dict[str, str]]]:
    rules = (MONITORING / "rules.yml").read_text()
    (tmp_path / "rules.yml").write_text(re.sub(r"for: \d+m", "for: 2s", rules))
    prometheus = (MONITORING / "prometheus.yml").read_text().replace("15s", "1s")
    (tmp_path / "prometheus.yml").write_text(prometheus)
    (tmp_path / "alertmanager.yml").write_text(
        "route: {receiver: sink, group_by: [alertname, queue], group_wait: 1s, "
        "group_interval: 1s, repeat_interval: 1h}\n"
        "receivers: [{name: sink, webhook_configs: [{url: 'http://alert-sink:8080/'}]}]\n"
    )
    sink_port = free_port()
    (tmp_path / "sink.yaml").write_text(
        "services:\n"
        "  alert-sink:\n"
        f"    image: {KEEL_IMAGE}\n"
        "    pull_policy: never\n"
        f"    entrypoint: [python3, -c, {json.dumps(_SINK)}]\n"
        f'    ports: ["127.0.0.1:{sink_port}:8080"]\n'
        "    healthcheck: {disable: true}\n"
    )
    for name in ("rules.yml", "prometheus.yml", "alertmanager.yml"):
        (tmp_path / name).chmod(0o644)
    env = {
        "APP_ENV": "test",
        "KEEL_IMAGE": KEEL_IMAGE,
        "PROMETHEUS_IMAGE": PROMETHEUS_IMAGE,
        "HTTP_PORT": str(free_port()),
        "PROMETHEUS_PORT": str(free_port()),
        "ALERTMANAGER_PORT": str(free_port()),
        "SINK_PORT": str(sink_port),
        "PROMETHEUS_CONFIG": str(tmp_path / "prometheus.yml"),
        "PROMETHEUS_RULES": str(tmp_path / "rules.yml"),
        "ALERTMANAGER_CONFIG": str(tmp_path / "alertmanager.yml"),
        "KEEL_AGE_KEY_FILE": str(
            stage_key(REPO / "secrets" / "keys" / "test.agekey", tmp_path / "key")
        ),
        **service_images(),
    }
    files = [
        REPO / "compose.yaml",
        REPO / "configs" / "test" / "compose.yaml",
        MONITORING / "compose.yaml",
        tmp_path / "sink.yaml",
    ]
    stack = Stack("keel-it-monitoring", files, env)
    try:
        stack.run("up", "-d", "--no-build", "--scale", "worker=2", timeout=400)
        stack.wait_healthy(timeout=240)
        yield stack, env
    finally:
        stack.run("down", "-v", "--remove-orphans", check=False, timeout=180)


def _query(env: dict[str, str], expr: str) -> list[dict[str, Any]]:
    """The query's result vector; empty while Prometheus does not answer yet."""
    try:
        reply = httpx.get(
            f"http://127.0.0.1:{env['PROMETHEUS_PORT']}/api/v1/query",
            params={"query": expr},
            timeout=5,
        )
        reply.raise_for_status()
    except httpx.HTTPError:
        return []
    result: list[dict[str, Any]] = reply.json()["data"]["result"]
    return result


def test_every_replica_scraped_counters_move_and_no_worker_alerts(
    monitored: tuple[Stack, dict[str, str]],
) -> None:
    stack, env = monitored

    def targets() -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for sample in _query(env, "up"):
            found.setdefault(sample["metric"]["job"], []).append(sample["value"][1])
        return found

    def all_up() -> bool:
        up = targets()
        return up.get("keel-api") == ["1"] and up.get("keel-worker") == ["1", "1"]

    wait_for(all_up, 120, "Prometheus to scrape 1 api and 2 worker replicas (up == 1)")

    api = Api(f"http://127.0.0.1:{env['HTTP_PORT']}")
    api.login(stack, "monitoring-user", "monitoring-password-42")
    for _ in range(4):
        api.submit("echo", {"n": 1})

    def jobs_counted() -> bool:
        done = _query(env, 'sum(keel_jobs_finished_total{outcome="succeeded"})')
        return bool(done) and float(done[0]["value"][1]) >= 4

    wait_for(jobs_counted, 90, "keel_jobs_finished_total to count the jobs")
    # The doctor inside the running api container: everything it can check is fine.
    doctor = stack.run("exec", "-T", "api", "keel", "doctor", check=False, timeout=120)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "OK   workers.default " in doctor.stdout
    assert "OK   db.schema " in doctor.stdout
    alive = _query(env, 'max(keel_workers_alive{queue="default"})')
    assert float(alive[0]["value"][1]) == 2

    def posts() -> list[dict[str, Any]]:
        try:
            got: list[dict[str, Any]] = httpx.get(
                f"http://127.0.0.1:{env['SINK_PORT']}/", timeout=5
            ).json()
        except httpx.HTTPError:
            return []
        return got

    def firing(since: int) -> list[dict[str, Any]]:
        return [
            alert
            for post in posts()[since:]
            for alert in post["alerts"]
            if alert["labels"]["alertname"] == "KeelNoLiveWorker" and alert["status"] == "firing"
        ]

    # While the workers were still starting the alert may have fired (and resolved): only what
    # arrives after it is resolved counts.
    wait_for(
        lambda: not _query(env, 'ALERTS{alertname="KeelNoLiveWorker"}'),
        60,
        "KeelNoLiveWorker to be inactive with two live workers",
    )
    time.sleep(3)  # the resolved notification, if any, goes out within group_interval (1 s)
    mark = len(posts())
    stack.run("stop", "worker", timeout=120)
    alerts = wait_for(lambda: firing(mark), 120, "KeelNoLiveWorker delivered to the webhook")
    assert alerts[0]["labels"]["queue"] == "default"
    assert alerts[0]["labels"]["severity"] == "critical"
