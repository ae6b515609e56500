"""Keel's processes for the jobs benchmarks (the API under Granian, `keel worker`) and what is
read back from them: CPU and RSS per process group, jobs per second and enqueue-to-done
latency from the job rows themselves."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backing import keel_settings as settings
from loadgen import free_port, granian, running, server_pid, tree_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
KEEL = str(Path(sys.executable).with_name("keel"))


def query(env: dict[str, str], sql: str) -> list[Any]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from keel.db.url import database_target

    async def run() -> list[Any]:
        engine = create_async_engine(database_target(settings(env)).url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(sql))
                return list(result.all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def enqueue_directly(env: dict[str, str], count: int) -> None:
    """Accept ``count`` echo jobs through the service (no HTTP): a backlog for the drain."""
    from keel.db.engine import sqlalchemy_config
    from keel.domain.jobs.kinds import QUEUES
    from keel.domain.jobs.services import JobService
    from keel.ids import Snowflake
    from keel.tasks import jobs_task
    from keel.tasks.broker import build_broker

    config = settings(env)

    async def run() -> None:
        broker = build_broker(config, QUEUES)
        enqueue = jobs_task.make_enqueue(broker, config)
        await broker.startup()
        engine = sqlalchemy_config(config).get_engine()
        ids = Snowflake(1000, epoch_ms=config.worker.ids_epoch_ms)
        service = JobService(engine, ids, enqueue, max_attempts=3)
        for start in range(0, count, 100):
            batch = range(start, min(count, start + 100))
            await asyncio.gather(*(service.create("echo", {"n": i}) for i in batch))
        await engine.dispose()
        await broker.shutdown()

    asyncio.run(run())


def wait_done(env: dict[str, str], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    pending = "SELECT count(*) FROM jobs WHERE status NOT IN ('succeeded', 'failed')"
    while query(env, pending)[0][0]:
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: jobs did not finish in {timeout:.0f} s")
        time.sleep(0.2)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(frozen=True)
class Flow:
    """Echo jobs from their rows: how many, end-to-end rate, enqueue-to-done latency."""

    jobs: int
    per_second: float
    p50_ms: float
    p99_ms: float

    @classmethod
    def of_echo_jobs(cls, env: dict[str, str]) -> Flow:
        rows = query(
            env,
            "SELECT extract(epoch FROM created_at), extract(epoch FROM finished_at) "
            "FROM jobs WHERE kind = 'echo' AND status = 'succeeded'",
        )
        if not rows:
            raise SystemExit("no echo job succeeded")
        created = [float(c) for c, _ in rows]
        finished = [float(f) for _, f in rows]
        latencies = [(f - c) * 1000 for c, f in zip(created, finished, strict=True)]
        elapsed = max(finished) - min(created)
        return cls(
            len(rows), len(rows) / elapsed, statistics.median(latencies), pct(latencies, 0.99)
        )


def drain_rate(env: dict[str, str]) -> tuple[int, float]:
    """(jobs, jobs/s) of the succeeded echo jobs, first start to last finish."""
    done, seconds = query(
        env,
        "SELECT count(*), extract(epoch FROM max(finished_at) - min(started_at)) "
        "FROM jobs WHERE kind = 'echo' AND status = 'succeeded'",
    )[0]
    return int(done), int(done) / float(seconds)


@dataclass(frozen=True)
class StoreCounters:
    """What the stores did: PostgreSQL commits and WAL fsyncs, Redis commands, and the CPU
    seconds of each server's processes."""

    commits: int
    wal_syncs: int
    redis_commands: int
    postgres_cpu: float
    redis_cpu: float

    @classmethod
    def read(cls, env: dict[str, str]) -> StoreCounters:
        import redis

        commits, syncs = query(
            env,
            "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),"
            " (SELECT wal_sync FROM pg_stat_wal)",
        )[0]
        client = redis.Redis(host=env["REDIS_HOST"], port=int(env["REDIS_PORT"]))
        try:
            commands = int(client.info("stats")["total_commands_processed"])
        finally:
            client.close()
        pg_pid = server_pid("postgres", int(env["DB_PORT"]))
        redis_pid = server_pid("redis-server", int(env["REDIS_PORT"]))
        return cls(
            int(commits),
            int(syncs),
            commands,
            tree_cpu_seconds(pg_pid) if pg_pid else float("nan"),
            tree_cpu_seconds(redis_pid) if redis_pid else float("nan"),
        )

    def per_job(self, before: StoreCounters, jobs: int) -> str:
        return (
            f"PostgreSQL {(self.commits - before.commits) / jobs:.2f} commits and "
            f"{(self.wal_syncs - before.wal_syncs) / jobs:.3f} WAL fsyncs, "
            f"{1000 * (self.postgres_cpu - before.postgres_cpu) / jobs:.2f} CPU-ms; Redis "
            f"{(self.redis_commands - before.redis_commands) / jobs:.2f} commands, "
            f"{1000 * (self.redis_cpu - before.redis_cpu) / jobs:.2f} CPU-ms"
        )


def clear_jobs(env: dict[str, str]) -> None:
    query(env, "DELETE FROM jobs WHERE kind = 'echo'")


@contextmanager
def api(env: dict[str, str], workers: int = 1) -> Iterator[tuple[str, int]]:
    """The API under Granian (``workers`` processes): (base URL, process group id). Its host
    check is on, as in production: ALLOWED_HOSTS names the address wrk sends as Host."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [*granian(workers), "--port", str(port), "--factory", "keel.app:app_factory"]
    hosts = {"ALLOWED_HOSTS": "127.0.0.1"}
    with running(cmd, f"{base}/health/live", {**env, **hosts}) as proc:
        yield base, proc.pid


@contextmanager
def worker(env: dict[str, str], processes: int = 1) -> Iterator[int]:
    """`keel worker --workers processes`: its process group id."""
    log = Path(tempfile.mkdtemp(prefix="keel-bench-worker-")) / "worker.log"
    proc = subprocess.Popen(
        [KEEL, "worker", "--workers", str(processes), "--max-async-tasks", "200"],
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        time.sleep(1.5)  # its consumers join the group before the load starts
        if proc.poll() is not None:
            raise SystemExit(f"keel worker exited {proc.returncode}:\n{log.read_text()[-2000:]}")
        yield proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
