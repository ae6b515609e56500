"""Jobs: GET /api/jobs/{id} against PostgreSQL, and end-to-end echo-job throughput.

Starts its own PostgreSQL and Redis (as the service tests do), the API under Granian (1 worker)
and `keel worker` (1 process). Figures:
- GET /api/jobs/{id}: req/s and p50/p99 (wrk, 32 connections, authenticated);
- echo jobs API -> Redis -> worker -> DB: accepted/s at the API, done/s end to end, and
  enqueue-to-done latency p50/p99 from the job rows (created_at -> finished_at).
Moonshot: >= 1,000 jobs/s end to end with every service on this machine.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from loadgen import free_port, running, wrk  # noqa: E402
from tests.service.servers import Postgres, RedisServer  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
# BENCH_PROFILE=DIR: record py-spy profiles (collapsed stacks) of the API and the worker there.
PROFILE = os.environ.get("BENCH_PROFILE")


def _profile(name: str, pid: int) -> subprocess.Popen[bytes] | None:
    if not PROFILE:
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
            str(SECONDS),
            "--pid",
            str(pid),
            "-o",
            f"{PROFILE}/{name}.txt",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _granian_pid(port: int) -> int:
    out = subprocess.run(
        ["pgrep", "-f", f"--port {port} "], capture_output=True, text=True, check=False
    ).stdout.split()
    return int(out[0]) if out else 0


def _settings(env: dict[str, str]):  # type: ignore[no-untyped-def]
    from keel.config import load

    return load("local", root=ROOT, environ=env, secrets_reader=lambda *a: {})


def _token(env: dict[str, str]) -> str:
    from keel.auth.runtime import build_runtime

    return build_runtime(_settings(env)).jwt.issue("1", "access", name="bench").token


def _rows(env: dict[str, str]) -> list[tuple[float, float]]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from keel.db.url import database_target

    async def run() -> list[tuple[float, float]]:
        engine = create_async_engine(database_target(_settings(env)).url)
        async with engine.connect() as conn:
            result = await conn.execute(
                text(
                    "SELECT extract(epoch FROM created_at), extract(epoch FROM finished_at) "
                    "FROM jobs WHERE kind = 'echo' AND status = 'succeeded'"
                )
            )
            rows = [(float(a), float(b)) for a, b in result.all()]
        await engine.dispose()
        return rows

    return asyncio.run(run())


def _count(env: dict[str, str], where: str) -> int:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from keel.db.url import database_target

    async def run() -> int:
        engine = create_async_engine(database_target(_settings(env)).url)
        async with engine.connect() as conn:
            value = await conn.scalar(text(f"SELECT count(*) FROM jobs WHERE {where}"))
        await engine.dispose()
        return int(value or 0)

    return asyncio.run(run())


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    pg = Postgres()
    redis = RedisServer(Path(tempfile.mkdtemp(prefix="keel-bench-redis-")))
    pg.init()
    pg.start()
    redis.start()
    worker = None
    try:
        pg.create_database("bench")
        env = {
            **pg.env("bench"),
            **redis.env(),
            "APP_ENV": "local",
            "KEEL_ROOT": str(ROOT),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "WARNING",
            "DEBUG": "false",
            "HTTP_ACCESS_LOG": "false",
            "DB_POOL_SIZE": "40",
            "DB_MAX_OVERFLOW": "0",
            "WORKER_FETCH_COUNT": "200",
            # The bench signs its own token: server and bench must share the key.
            "JWT_SECRET_KEY": os.urandom(32).hex(),
        }
        from keel.db.migrate import migrate

        asyncio.run(migrate(_settings(env)))
        token = _token(env)
        auth = f"Authorization: Bearer {token}"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        cmd = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--loop",
            "uvloop",
            "--workers",
            "1",
            "--runtime-threads",
            "1",
            "--backlog",
            "1024",
            "--port",
            str(port),
            "--factory",
            "keel.app:app_factory",
        ]
        with running(cmd, f"{base}/health/live", env):
            import json
            import urllib.request

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
            if spy:
                spy.wait()
            print(get.line("GET /api/jobs/{id} (PostgreSQL)"))

            script = Path(tempfile.mkdtemp()) / "post.lua"
            script.write_text(
                'wrk.method = "POST"\n'
                'wrk.body = \'{"kind": "echo", "payload": {"n": 1}}\'\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
            )
            log = Path(tempfile.mkdtemp()) / "worker.log"
            worker = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("keel")),
                    "worker",
                    "--workers",
                    "1",
                    "--max-async-tasks",
                    "200",
                ],
                env={**os.environ, **env},
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            import redis as redis_client

            probe = redis_client.Redis.from_url(redis.url)
            deadline = time.monotonic() + 60
            while not probe.keys("keel:worker:*"):
                if time.monotonic() > deadline:
                    raise SystemExit(f"worker did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)
            began = time.time()
            spies = [_profile("api-post", _granian_pid(port)), _profile("worker", worker.pid)]
            post = wrk(f"{base}/api/jobs", seconds=SECONDS, headers=[auth], script=str(script))
            print(post.line("POST /api/jobs (echo, accepted)"))
            for spy in spies:
                if spy:
                    spy.wait()
            deadline = time.monotonic() + 120
            while _count(env, "kind = 'echo' AND status NOT IN ('succeeded', 'failed')"):
                if time.monotonic() > deadline:
                    raise SystemExit("echo jobs did not finish in 120 s")
                time.sleep(0.5)
            rows = _rows(env)
            first_created = min(c for c, _ in rows)
            last_done = max(f for _, f in rows)
            latencies = [(f - c) * 1000 for c, f in rows]
            elapsed = last_done - first_created
            print(
                f"{'echo jobs end to end (1 worker)':<34} {len(rows) / elapsed:>10,.0f} jobs/s"
                f"   p50 {statistics.median(latencies):6.1f} ms   p99 {_pct(latencies, 0.99):6.1f}"
                f" ms   ({len(rows)} jobs in {elapsed:.1f} s; load from {began:.0f})"
            )
            print("moonshot: >= 1,000 jobs/s end to end")
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
        redis.stop()
        pg.stop()
        pg.cleanup()


if __name__ == "__main__":
    main()
