"""Jobs: GET /api/jobs/{id} against PostgreSQL, worker drain rate, end-to-end echo throughput.

Starts its own PostgreSQL and Redis (as the service tests do), the API under Granian (1 worker)
and `keel worker` (1 process). Figures:
- GET /api/jobs/{id}: req/s and p50/p99 (wrk, 32 connections, authenticated);
- worker drain: a backlog of echo jobs run by one worker process (jobs/s);
- echo jobs API -> Redis -> worker -> DB under HTTP load: accepted/s at the API, done/s end to
  end, enqueue-to-done latency p50/p99 from the job rows (created_at -> finished_at).
Moonshot: >= 1,000 jobs/s end to end with every service on this machine.
BENCH_SECONDS (default 5), BENCH_BACKLOG (default 3000), BENCH_PROFILE=DIR (py-spy profiles,
collapsed stacks, of the API and the worker).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from backing import postgres_and_redis, signing_api_env  # noqa: E402
from loadgen import GRANIAN, free_port, running, wrk  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
BACKLOG = int(os.environ.get("BENCH_BACKLOG", "3000"))
PROFILE = os.environ.get("BENCH_PROFILE")
KEEL = str(Path(sys.executable).with_name("keel"))


def _profile(name: str, pid: int, seconds: int = SECONDS) -> subprocess.Popen[bytes] | None:
    if not PROFILE or not pid:
        return None
    Path(PROFILE).mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            "uvx",
            "py-spy",
            "record",
            "--subprocesses",
            "--format",
            "raw",
            "--rate",
            "200",
            "--duration",
            str(seconds),
            "--pid",
            str(pid),
            "-o",
            f"{PROFILE}/{name}.txt",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _granian_pid(port: int) -> int:
    found = subprocess.run(
        ["pgrep", "-f", "--", f"--port {port} --factory"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return int(found[0]) if found else 0


def _settings(env: dict[str, str]) -> Any:
    from keel.config import load

    return load("local", root=ROOT, environ=env, secrets_reader=lambda *a: {})


def _query(env: dict[str, str], sql: str) -> list[Any]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from keel.db.url import database_target

    async def run() -> list[Any]:
        engine = create_async_engine(database_target(_settings(env)).url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(sql))
                return list(result.all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _enqueue_directly(env: dict[str, str], count: int) -> None:
    """Accept ``count`` echo jobs through the service (no HTTP): a backlog for the drain."""
    from keel.db.engine import sqlalchemy_config
    from keel.domain.jobs.kinds import QUEUES
    from keel.domain.jobs.services import JobService
    from keel.ids import Snowflake
    from keel.tasks import jobs_task
    from keel.tasks.broker import build_broker

    settings = _settings(env)

    async def run() -> None:
        broker = build_broker(settings, QUEUES)
        enqueue = jobs_task.make_enqueue(broker, settings)
        await broker.startup()
        engine = sqlalchemy_config(settings).get_engine()
        ids = Snowflake(1000, epoch_ms=settings.worker.ids_epoch_ms)
        service = JobService(engine, ids, enqueue, max_attempts=3)
        for start in range(0, count, 100):
            batch = range(start, min(count, start + 100))
            await asyncio.gather(*(service.create("echo", {"n": i}) for i in batch))
        await engine.dispose()
        await broker.shutdown()

    asyncio.run(run())


def _wait_done(env: dict[str, str], what: str) -> None:
    deadline = time.monotonic() + 180
    pending = "SELECT count(*) FROM jobs WHERE status NOT IN ('succeeded', 'failed')"
    while _query(env, pending)[0][0]:
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: jobs did not finish in 180 s")
        time.sleep(0.5)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = Path(tempfile.mkdtemp()) / "worker.log"
    return subprocess.Popen(
        [KEEL, "worker", "--workers", "1", "--max-async-tasks", "200"],
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def bench(env: dict[str, str]) -> None:
    from keel.auth.runtime import build_runtime

    token = build_runtime(_settings(env)).jwt.issue("1", "access", name="bench").token
    auth = f"Authorization: Bearer {token}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        *GRANIAN,
        "--port",
        str(port),
        "--factory",
        "keel.app:app_factory",
    ]
    worker: subprocess.Popen[bytes] | None = None
    with running(cmd, f"{base}/health/live", env):
        try:
            request = urllib.request.Request(
                f"{base}/api/jobs",
                data=json.dumps({"kind": "sleep", "payload": {"seconds": 0}}).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request) as response:
                job_id = json.loads(response.read())["id"]
            url = f"{base}/api/jobs/{job_id}"
            wrk(url, seconds=1, headers=[auth])
            spy = _profile("api-get", _granian_pid(port))
            get = wrk(url, seconds=SECONDS, headers=[auth])
            print(get.line("GET /api/jobs/{id} (PostgreSQL)"), flush=True)
            if spy:
                spy.wait()

            # Drain: a backlog of echo jobs, then one worker process runs them all.
            _enqueue_directly(env, BACKLOG)
            worker = _start_worker(env)
            spy = _profile("worker-drain", worker.pid, seconds=SECONDS + 10)
            _wait_done(env, "drain")
            done, seconds = _query(
                env,
                "SELECT count(*), extract(epoch FROM max(finished_at) - min(started_at)) "
                "FROM jobs WHERE kind = 'echo' AND status = 'succeeded'",
            )[0]
            print(
                f"{'worker drain (backlog, 1 process)':<34} {done / float(seconds):>10,.0f}"
                f" jobs/s   ({done} jobs in {float(seconds):.1f} s)",
                flush=True,
            )
            if spy:
                spy.wait()
            _query(env, "DELETE FROM jobs WHERE kind = 'echo'")

            # End to end under HTTP load: wrk POSTs echo jobs while the worker runs them.
            script = Path(tempfile.mkdtemp()) / "post.lua"
            script.write_text(
                'wrk.method = "POST"\n'
                'wrk.body = \'{"kind": "echo", "payload": {"n": 1}}\'\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
            )
            spies = [_profile("api-post", _granian_pid(port)), _profile("worker", worker.pid)]
            post = wrk(f"{base}/api/jobs", seconds=SECONDS, headers=[auth], script=str(script))
            print(post.line("POST /api/jobs (echo, accepted)"), flush=True)
            for spy in spies:
                if spy:
                    spy.wait()
            _wait_done(env, "end to end")
            rows = _query(
                env,
                "SELECT extract(epoch FROM created_at), "
                "extract(epoch FROM finished_at) FROM jobs WHERE kind = 'echo'",
            )
            created = [float(c) for c, _ in rows]
            finished = [float(f) for _, f in rows]
            latencies = [(f - c) * 1000 for c, f in zip(created, finished, strict=True)]
            elapsed = max(finished) - min(created)
            print(
                f"{'echo jobs end to end (1 worker)':<34} {len(rows) / elapsed:>10,.0f} jobs/s"
                f"   p50 {statistics.median(latencies):6.1f} ms   p99 {_pct(latencies, 0.99):6.1f}"
                f" ms   ({len(rows)} jobs in {elapsed:.1f} s)"
            )
            print(
                "moonshot: >= 1,000 jobs/s end to end; load average now: "
                f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
            )
        finally:
            if worker is not None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(30)


def main() -> None:
    with postgres_and_redis(Path(tempfile.mkdtemp(prefix="keel-bench-redis-"))) as backing:
        env = {**signing_api_env(backing), "WORKER_FETCH_COUNT": "200"}
        from keel.db.migrate import migrate

        asyncio.run(migrate(_settings(env)))
        bench(env)


if __name__ == "__main__":
    main()
