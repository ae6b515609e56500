"""Metrics end to end: `keel serve` (2 Granian workers) and `keel worker` (2 processes) against
real PostgreSQL and Redis, each process tree scraped once on its internal port."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from keel.auth.runtime import build_runtime
from tests.service.conftest import Proc, make_settings, wait_for
from tests.service.servers import free_port

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_api_and_worker_metrics(stack_env: dict[str, str], spawn: Callable[..., Proc]) -> None:
    http_port, api_metrics, worker_metrics = free_port(), free_port(), free_port()
    env = {
        **stack_env,
        "HTTP_PORT": str(http_port),
        "HTTP_WORKERS": "2",
        "METRICS_PORT": str(api_metrics),
        "METRICS_WORKER_PORT": str(worker_metrics),
        # The test signs its own token: the same key as the api (not the secrets file's).
        "JWT_SECRET_KEY": "metrics-e2e-signing-key-0123456789abcdef",
    }
    api = spawn(["serve"], env, name="api")
    base = f"http://127.0.0.1:{http_port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, 60, "the api to be ready", interval=0.3)
    token = build_runtime(make_settings(env)).jwt.issue("1", "access", name="m").token
    auth = {"Authorization": f"Bearer {token}"}

    # The app port has no metrics; the internal port has nothing but.
    assert httpx.get(f"{base}/metrics", timeout=5).status_code in (401, 404)
    assert httpx.get(f"http://127.0.0.1:{api_metrics}/", timeout=5).status_code == 404

    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(40):
            assert client.get("/health/live").status_code == 200
        for job_id in (111, 222, 333):  # three raw paths, one route template
            assert client.get(f"/api/jobs/{job_id}", headers=auth).status_code == 404
        assert client.get("/no/such/path/42").status_code == 404
        refused = client.get("/api/jobs/1", headers={"Authorization": "Bearer not-a-jwt"})
        assert refused.status_code == 401
        ids = []
        for _ in range(5):
            accepted = client.post("/api/jobs", json={"kind": "echo"}, headers=auth)
            assert accepted.status_code == 202, accepted.text
            ids.append(accepted.json()["id"])
        retried = client.post(
            "/api/jobs",
            json={"kind": "sleep", "payload": {"seconds": 0, "fail_attempts": 1}},
            headers=auth,
        )
        failed = client.post(
            "/api/jobs",
            json={"kind": "sleep", "payload": {"seconds": 0, "fail_attempts": 9}},
            headers=auth,
        )
        ids += [retried.json()["id"], failed.json()["id"]]

    def http_counted() -> Samples | None:
        samples = scrape(api_metrics)
        live = value(
            samples,
            "keel_http_requests_total",
            method="GET",
            route="/health/live",
            status_class="2xx",
        )
        jobs_4xx = value(
            samples,
            "keel_http_requests_total",
            method="GET",
            route="/api/jobs/{job_id}",
            status_class="4xx",
        )
        # Each Granian worker flushes its own counts once a second: wait for all of them.
        return samples if live >= 40 and jobs_4xx >= 4 else None

    samples = wait_for(http_counted, 15, "both Granian workers' counts (flushed each second)")
    route = "/api/jobs/{job_id}"
    assert (
        value(samples, "keel_http_requests_total", method="GET", route=route, status_class="4xx")
        == 4
    )
    assert (
        value(samples, "keel_http_request_duration_seconds_count", method="POST", route="/api/jobs")
        == 7
    )
    assert value(samples, "keel_jobs_accepted_total", queue="default", kind="echo") == 5
    assert value(samples, "keel_auth_refusals_total", reason="malformed") == 1
    text = httpx.get(f"http://127.0.0.1:{api_metrics}/metrics", timeout=5).text
    assert "/api/jobs/111" not in text
    assert "/no/such/path" not in text
    unmatched = {"method": "GET", "route": "unmatched", "status_class": "4xx"}
    # GET /metrics on the app port and /no/such/path/42: one series, whatever the path.
    assert value(samples, "keel_http_requests_total", **unmatched) == 2
    assert "not-a-jwt" not in text
    assert value(samples, "keel_workers_alive", queue="default") == 0
    assert value(samples, "keel_queue_length", queue="default") == 7
    assert value(samples, "keel_queue_oldest_age_seconds", queue="default") > 0
    assert value(samples, "keel_dependency_up", dependency="redis") == 1
    assert value(samples, "keel_dependency_up", dependency="database") == 1
    assert value(samples, "keel_db_pool_capacity") > 0

    worker = spawn(["worker", "--workers", "2"], env, name="worker")

    def jobs_done() -> Samples | None:
        try:
            samples = scrape(worker_metrics)
        except httpx.HTTPError:
            return None
        finished = sum(v for (name, _), v in samples.items() if name == "keel_jobs_finished_total")
        # 5 echo; retried once then succeeded; retried twice then failed (3 attempts).
        return samples if finished >= 10 else None

    samples = wait_for(jobs_done, 60, "the worker to finish the jobs", interval=0.5)
    assert (
        value(
            samples, "keel_jobs_finished_total", queue="default", kind="echo", outcome="succeeded"
        )
        == 5
    )
    sleep = {"queue": "default", "kind": "sleep"}
    assert value(samples, "keel_jobs_finished_total", **sleep, outcome="retried") == 3
    assert value(samples, "keel_jobs_finished_total", **sleep, outcome="succeeded") == 1
    assert value(samples, "keel_jobs_finished_total", **sleep, outcome="failed") == 1
    assert value(samples, "keel_jobs_started_total", queue="default", kind="echo") == 5
    assert value(samples, "keel_job_run_seconds_count", queue="default", kind="echo") == 5
    assert value(samples, "keel_job_wait_seconds_count", queue="default", kind="echo") == 5
    assert value(samples, "keel_jobs_in_flight") == 0

    def workers_seen(expected: int) -> Callable[[], bool]:
        return lambda: value(scrape(api_metrics), "keel_workers_alive", queue="default") == expected

    wait_for(workers_seen(2), 20, "two live worker processes on the api's metrics")
    worker.stop()
    wait_for(workers_seen(0), 20, "no live worker after the worker stopped")
    assert api.process.poll() is None
