"""Faults that must lose nothing: killed and stopped workers, a Redis restart, a late database."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import tests.service.domain.jobs.fault_kinds  # noqa: F401 - registers test.count in this process too
from keel.app import create_app
from keel.auth.runtime import build_runtime
from keel.db.migrate import migrate
from keel.db.url import database_target
from tests.service.conftest import FAST_TIMINGS, Proc, make_settings, wait_for
from tests.service.domain.jobs.fault_kinds import COUNTER_DDL
from tests.service.servers import Postgres, RedisServer

WORKER = ["worker", "--queues", "default", "--", "tests.service.domain.jobs.fault_kinds"]
TERMINAL = {"succeeded", "failed", "cancelled"}


@contextlib.contextmanager
def api_client(env: dict[str, str]) -> Iterator[TestClient[Any]]:
    settings = make_settings(env)
    token = build_runtime(settings).jwt.issue("1", "access", name="faults").token
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def _sql(env: dict[str, str], statement: str) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_async_engine(database_target(make_settings(env)).url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement))
                return list(result.all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _job(api: TestClient[Any], job_id: str) -> dict[str, Any]:
    return dict(api.get(f"/api/jobs/{job_id}").json())


def _listening(worker: Proc) -> bool:
    return "Listening started" in worker.output()


def test_killed_worker_job_completes_once_and_sigterm_finishes_in_flight(
    stack_env: dict[str, str], spawn: Callable[..., Proc]
) -> None:
    _sql(stack_env, COUNTER_DDL)
    with api_client(stack_env) as api:
        first = spawn(WORKER, stack_env, "worker-a")
        second = spawn(WORKER, stack_env, "worker-b")
        wait_for(lambda: _listening(first) and _listening(second), 60, "both workers listening")

        # SIGKILL the worker running the job: another reclaims it, the effect happens once.
        job = api.post("/api/jobs", json={"kind": "test.count", "payload": {"seconds": 2}}).json()
        running = wait_for(
            lambda: (j := _job(api, job["id"]))["status"] == "running" and j, 20, "the job to start"
        )
        owner = running["worker_id"]
        victim, survivor = (
            (first, second) if f"worker {owner} starting" in first.output() else (second, first)
        )
        # taskiq runs jobs in a child of the process we started; kill the whole group.
        victim.signal_group(signal.SIGKILL)
        done = wait_for(
            lambda: (j := _job(api, job["id"]))["status"] in TERMINAL and j,
            30,
            "the reclaimed job to finish",
        )
        assert done["status"] == "succeeded", done
        assert done["worker_id"] != owner
        assert done["attempts"] == 2
        assert "taken over from dead worker" in survivor.output()
        rows = _sql(stack_env, f"SELECT count(*) FROM fault_counter WHERE job_id = {job['id']}")
        assert rows[0][0] == 1

        # SIGTERM mid-job: the job finishes before the process exits.
        job = api.post("/api/jobs", json={"kind": "test.count", "payload": {"seconds": 2}}).json()
        wait_for(lambda: _job(api, job["id"])["status"] == "running", 20, "the job to start")
        survivor.process.send_signal(signal.SIGTERM)
        assert survivor.wait(30) == 0
        done = _job(api, job["id"])
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 1
        rows = _sql(stack_env, f"SELECT count(*) FROM fault_counter WHERE job_id = {job['id']}")
        assert rows[0][0] == 1


def test_redis_restart_while_jobs_flow(
    stack_env: dict[str, str], redis_server: RedisServer, spawn: Callable[..., Proc]
) -> None:
    accepted: list[str] = []
    refused = 0
    stop = threading.Event()
    with api_client(stack_env) as api:
        worker = spawn(WORKER, stack_env, "worker")
        wait_for(lambda: "Listening started" in worker.output(), 60, "the worker")

        def produce() -> None:
            nonlocal refused
            while not stop.is_set():
                response = api.post("/api/jobs", json={"kind": "echo", "payload": {"n": 1}})
                if response.status_code == 202:
                    accepted.append(response.json()["id"])
                else:
                    refused += 1
                time.sleep(0.02)

        producer = threading.Thread(target=produce)
        producer.start()
        try:
            wait_for(lambda: len(accepted) >= 20, 30, "jobs flowing")
            redis_server.restart(down_s=1.0)
            count = len(accepted)
            wait_for(lambda: len(accepted) >= count + 20, 30, "jobs accepted after the restart")
        finally:
            stop.set()
            producer.join()

        def unfinished() -> list[str]:
            rows = _sql(
                stack_env,
                "SELECT id FROM jobs WHERE status NOT IN ('succeeded', 'failed', 'cancelled')",
            )
            return [str(row[0]) for row in rows]

        wait_for(lambda: not unfinished(), 60, "every accepted job to finish")
        statuses = _sql(stack_env, "SELECT status, count(*) FROM jobs GROUP BY status")
        assert dict(statuses) == {"succeeded": len(accepted)}, (statuses, refused)
        assert "broker connection restored" in worker.output()
        assert api.get("/health/ready").status_code == 200


def test_redis_restart_costs_no_failed_request(
    stack_env: dict[str, str], redis_server: RedisServer
) -> None:
    """Pooled connections die with Redis; the next request must reconnect, not answer 5xx."""
    with api_client(stack_env) as api:
        job = api.post("/api/jobs", json={"kind": "echo"})
        assert job.status_code == 202
        assert api.get(f"/api/jobs/{job.json()['id']}").status_code == 200  # revoked-token store

        redis_server.restart()

        # The very first requests after the restart: token check, broker kick, readiness.
        assert api.get(f"/api/jobs/{job.json()['id']}").status_code == 200
        second = api.post("/api/jobs", json={"kind": "echo"})
        assert second.status_code == 202, second.text
        assert api.get("/health/ready").status_code == 200


def test_api_starts_without_database_and_becomes_ready(
    redis_env: dict[str, str], tmp_path: Path
) -> None:
    late = Postgres()
    late.init()
    env = {
        **late.env("keel"),
        **redis_env,
        **FAST_TIMINGS,
        "DB_CONNECT_RETRIES": "1",
        "DB_CONNECT_TIMEOUT": "1",
    }
    try:
        with api_client(env) as api:
            assert api.get("/health/live").status_code == 200
            ready = api.get("/health/ready")
            assert ready.status_code == 503
            assert "database" in ready.json()["failing"]

            late.start()
            late.create_database("keel")
            asyncio.run(migrate(make_settings(env)))
            wait_for(lambda: api.get("/health/ready").status_code == 200, 20, "ready")
            job = api.post("/api/jobs", json={"kind": "echo"})
            assert job.status_code == 202
    finally:
        late.stop()
        late.cleanup()


def test_stopped_worker_hands_back_prefetched_jobs_at_once(
    stack_env: dict[str, str], spawn: Callable[..., Proc]
) -> None:
    _sql(stack_env, COUNTER_DDL)
    # A long idle timeout: without the hand-back the other jobs would wait a minute.
    env = {**stack_env, "WORKER_IDLE_TIMEOUT": "60"}
    one_at_a_time = [
        "worker",
        "--queues",
        "default",
        "--max-async-tasks",
        "1",
        "--",
        "tests.service.domain.jobs.fault_kinds",
    ]
    with api_client(env) as api:
        # Queued before the worker starts: its first read fetches all three.
        ids = [
            api.post("/api/jobs", json={"kind": "test.count", "payload": {"seconds": 1}}).json()[
                "id"
            ]
            for _ in range(3)
        ]
        first = spawn(one_at_a_time, env, "worker-a")
        wait_for(lambda: any(_job(api, i)["status"] == "running" for i in ids), 60, "a job")
        first.process.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
        assert "handed back" in first.output()
        second = spawn(WORKER, env, "worker-b")
        wait_for(
            lambda: all(_job(api, i)["status"] == "succeeded" for i in ids),
            40,
            "the handed-back jobs to finish well before the idle timeout",
        )
        assert _listening(second)
        counts = _sql(env, "SELECT count(*) FROM fault_counter")
        assert counts[0][0] == 3
