"""Jobs end to end: API (in-process) -> PostgreSQL + Redis stream -> `keel worker` process."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from keel.app import create_app
from keel.auth.runtime import build_runtime
from keel.cli import main
from keel.ids import id_node
from tests.service.conftest import (
    FAST_TIMINGS,
    KEEL,
    make_settings,
    new_pg_env,
    new_redis_env,
    process_env,
    spawner,
    wait_for,
)
from tests.service.servers import Postgres, RedisServer


@contextlib.contextmanager
def _client(env: dict[str, str]) -> Iterator[TestClient[Any]]:
    settings = make_settings(env)
    with TestClient(create_app(settings)) as client:
        client.headers.update(_auth_headers(settings))
        yield client


@pytest.fixture(scope="module")
def e2e_env(pg_server: Postgres, redis_server: RedisServer) -> dict[str, str]:
    """One database, Redis prefix and worker (default + gpu queues) for this module."""
    return {
        **new_pg_env(pg_server),
        **new_redis_env(redis_server),
        **FAST_TIMINGS,
        "WORKER_ALLOW_GPU_QUEUE_WITHOUT_GPU": "true",
        "WORKER_REQUEUE_AFTER": "1",
        "WORKER_SWEEP_INTERVAL": "0.5",
    }


@pytest.fixture(scope="module")
def api(
    e2e_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient[Any]]:
    with spawner(tmp_path_factory.mktemp("e2e")) as spawn, _client(e2e_env) as client:
        spawn(["worker", "--queues", "default,gpu", "--workers", "2"], e2e_env, "worker")
        yield client


def _auth_headers(settings: Any) -> dict[str, str]:
    """The jobs API needs a caller: a bearer token signed with the app's own signing key."""
    token = build_runtime(settings).jwt.issue("1", "access", name="e2e").token
    return {"Authorization": f"Bearer {token}"}


def _job(client: TestClient[Any], job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _wait_terminal(client: TestClient[Any], job_id: str, timeout: float = 20) -> dict[str, Any]:
    return dict(
        wait_for(
            lambda: (
                (j := _job(client, job_id))["status"] in {"succeeded", "failed", "cancelled"} and j
            ),
            timeout,
            f"job {job_id} to finish",
        )
    )


def test_jobs_flow_through_a_worker(api: TestClient[Any], e2e_env: dict[str, str]) -> None:
    ready = api.get("/health/ready").json()
    assert ready["status"] == "ok", ready
    assert {"database", "migrations", "redis", "broker"} <= set(ready["checks"])

    echo = api.post("/api/jobs", json={"kind": "echo", "payload": {"hello": "world"}})
    assert echo.status_code == 202
    accepted = echo.json()
    assert accepted["status"] == "queued"
    assert accepted["queue"] == "default"
    done = _wait_terminal(api, accepted["id"])
    assert done["status"] == "succeeded"
    assert done["result"] == {"hello": "world"}
    assert done["attempts"] == 1
    assert done["worker_id"]

    # A leased (not fixed) node id: REDIS_BACKEND=redis.
    assert id_node(int(accepted["id"])) in range(1024)

    # Idempotency: the same key returns the same job.
    first = api.post("/api/jobs", json={"kind": "echo", "idempotency_key": "abc"}).json()
    again = api.post("/api/jobs", json={"kind": "echo", "idempotency_key": "abc"}).json()
    assert again["id"] == first["id"]
    assert again["created"] is False

    # Checksum: real CPU work, deterministic result.
    checksum = api.post("/api/jobs", json={"kind": "checksum", "payload": {"mebibytes": 4}})
    result = _wait_terminal(api, checksum.json()["id"])["result"]
    from keel.domain.jobs.kinds import checksum_bytes

    assert result == {"sha256": checksum_bytes(4), "mebibytes": 4}

    # Retries with backoff: fails once (retryable), then succeeds.
    retried = api.post(
        "/api/jobs", json={"kind": "sleep", "payload": {"seconds": 0, "fail_attempts": 1}}
    )
    job = _wait_terminal(api, retried.json()["id"])
    assert job["status"] == "succeeded"
    assert job["attempts"] == 2

    # Attempts exhausted: failed with the error.
    exhausted = api.post(
        "/api/jobs", json={"kind": "sleep", "payload": {"seconds": 0, "fail_attempts": 5}}
    )
    job = _wait_terminal(api, exhausted.json()["id"])
    assert job["status"] == "failed"
    assert job["attempts"] == 3
    assert "planned failure on attempt 3" in job["error"]

    # The worker's heartbeat is visible to `keel healthcheck worker`.
    check = subprocess.run(
        [KEEL, "healthcheck", "worker"],
        env=process_env(e2e_env),
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "healthy" in check.stdout
    assert "queues default,gpu" in check.stdout
    assert check.stdout.count("in flight") == 2  # --workers 2: one heartbeat per process


def test_api_validation_paging_and_cancel(stack_env: dict[str, str]) -> None:
    with _client(stack_env) as api:
        _validation_paging_and_cancel(api)


def _validation_paging_and_cancel(api: TestClient[Any]) -> None:
    unknown = api.post("/api/jobs", json={"kind": "nope"})
    assert unknown.status_code == 422
    assert "unknown job kind" in unknown.json()["detail"]
    bad = api.post("/api/jobs", json={"kind": "sleep", "payload": {"seconds": "x"}})
    assert bad.status_code == 422
    assert api.get("/api/jobs/123").status_code == 404
    assert api.get("/api/jobs/abc").status_code == 404

    # No worker runs: jobs stay queued, so they can be cancelled and paged.
    ids = [
        api.post("/api/jobs", json={"kind": "sleep", "payload": {"seconds": 1}}).json()["id"]
        for _ in range(5)
    ]
    cancelled = api.post(f"/api/jobs/{ids[0]}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert api.post(f"/api/jobs/{ids[0]}/cancel").status_code == 409

    page1 = api.get("/api/jobs", params={"limit": 2, "kind": "sleep"}).json()
    assert [item["id"] for item in page1["items"]] == [ids[4], ids[3]]
    page2 = api.get("/api/jobs", params={"limit": 2, "cursor": page1["next_cursor"]}).json()
    assert [item["id"] for item in page2["items"]] == [ids[2], ids[1]]
    page3 = api.get("/api/jobs", params={"limit": 2, "cursor": page2["next_cursor"]}).json()
    assert [item["id"] for item in page3["items"]] == [ids[0]]
    assert page3["next_cursor"] is None
    queued = api.get("/api/jobs", params={"status": "cancelled"}).json()["items"]
    assert [item["id"] for item in queued] == [ids[0]]
    assert api.get("/api/jobs", params={"status": "bogus"}).status_code == 400


def test_gpu_queue_refused_without_a_gpu(
    stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in process_env(stack_env).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GPU_FAKE_NVML", "")
    assert main(["worker", "--queues", "default,gpu"]) == 2
    assert "refusing to consume the gpu queue: no NVIDIA GPU visible" in capsys.readouterr().err


def test_gpu_probe_fails_clearly_without_a_gpu(api: TestClient[Any]) -> None:
    probe = api.post("/api/jobs", json={"kind": "gpu.probe"}).json()
    assert probe["queue"] == "gpu"
    job = _wait_terminal(api, probe["id"])
    assert job["status"] == "failed"
    assert "no NVIDIA GPU visible" in job["error"]
    fleet = wait_for(
        lambda: (f := api.get("/api/gpus").json())["workers"] and f,
        10,
        "the gpu worker in /api/gpus",
    )
    assert fleet["has_capacity"] is False
    assert fleet["workers"][0]["consumes_gpu_queue"] is True


def test_memory_backend_runs_jobs_in_process(tmp_path: Any) -> None:
    settings = make_settings({"DB_DATABASE": str(tmp_path / "local.db")})
    from keel.db.migrate import migrate

    asyncio.run(migrate(settings))
    with TestClient(create_app(settings)) as client:
        client.headers.update(_auth_headers(settings))
        job = client.post("/api/jobs", json={"kind": "echo", "payload": {"x": 1}}).json()
        done = _wait_terminal(client, job["id"], 10)
        assert done["result"] == {"x": 1}
        assert done["worker_id"] == "local"


def test_job_whose_message_was_lost_is_reenqueued(
    api: TestClient[Any], e2e_env: dict[str, str]
) -> None:
    from keel.db.engine import sqlalchemy_config
    from keel.domain.jobs.services import JobService
    from keel.ids import Snowflake

    settings = make_settings(e2e_env)

    async def lost() -> str:
        async def drop(job_id: int, queue: str) -> None:
            return None  # the message never reaches Redis

        engine = sqlalchemy_config(settings).get_engine()
        try:
            service = JobService(
                engine, Snowflake(1023, epoch_ms=settings.worker.ids_epoch_ms), drop, max_attempts=3
            )
            # Owned by the caller the API client signs as (sub "1"), so it may read it.
            return (await service.create("echo", {"lost": True}, owner="user:1")).id
        finally:
            await engine.dispose()

    job = _wait_terminal(api, asyncio.run(lost()))
    assert job["status"] == "succeeded"
    assert job["result"] == {"lost": True}
