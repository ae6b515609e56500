"""The ceilings Keel's figures are divided by, measured in the same run on the same servers:

- a bare Litestar app (bench/bare_app.py) under the same Granian settings: ``/health/live``, and
  ``GET /api/jobs/{id}`` as one SELECT on an asyncpg pool answering the same JSON;
- PostgreSQL alone doing a job's three writes (insert, claim, succeed: one commit each) from
  pgbench's 32 clients, the durable commit rate the jobs pipeline sits on;
- Redis alone taking job messages (``XADD``) from redis-benchmark's 32 clients.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from loadgen import free_port, granian, running

HERE = Path(__file__).resolve().parent

# One job's writes as Keel's unbatched path makes them, each its own autocommitted statement.
_PGBENCH_JOB = """\\set id random(1, 9000000000000000000)
INSERT INTO jobs (id, kind, queue, payload, status, attempts, max_attempts, created_by, \
created_at) VALUES (:id, 'echo', 'default', '{"n": 1}', 'queued', 0, 3, 'pgbench', now());
UPDATE jobs SET status = 'running', worker_id = 'pgbench', attempts = attempts + 1, \
started_at = now() WHERE id = :id AND status = 'queued';
UPDATE jobs SET status = 'succeeded', result = '{"n": 1}', finished_at = now() \
WHERE id = :id AND status = 'running' AND worker_id = 'pgbench';
"""


def dsn(backing: Mapping[str, str]) -> str:
    b = backing
    return (
        f"postgresql://{b['DB_USERNAME']}:{b['DB_PASSWORD']}@{b['DB_HOST']}:{b['DB_PORT']}"
        f"/{b['DB_DATABASE']}"
    )


@contextmanager
def bare_app(backing: Mapping[str, str]) -> Iterator[str]:
    """The bare app under the same Granian settings as Keel: its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"PYTHONPATH": str(HERE), "BARE_DSN": dsn(backing)}
    with running([*granian(1), "--port", str(port), "bare_app:app"], f"{base}/health/live", env):
        yield base


def _pg_tool(
    backing: Mapping[str, str], tool: str, args: list[str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run PostgreSQL's ``tool`` (pgbench, psql) against the bench database."""
    from tests.service.servers import pg_bin

    b = backing
    connection = ["-h", b["DB_HOST"], "-p", b["DB_PORT"], "-U", b["DB_USERNAME"]]
    return subprocess.run(
        [str(pg_bin(tool)), *args, *connection, b["DB_DATABASE"]],
        env={"PGPASSWORD": b["DB_PASSWORD"], "PATH": "/usr/bin:/bin"},
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )


def pgbench_jobs(backing: Mapping[str, str], seconds: int) -> float:
    """Jobs/s PostgreSQL alone sustains for a job's three writes (pgbench, 32 clients)."""
    script = Path(tempfile.mkdtemp(prefix="keel-pgbench-")) / "job.sql"
    script.write_text(_PGBENCH_JOB)
    done = _pg_tool(backing, "pgbench", ["-n", "-c32", "-j1", f"-T{seconds}", "-f", str(script)])
    found = re.search(r"tps = ([\d.]+)", done.stdout)
    if found is None:
        raise SystemExit(f"pgbench printed no tps:\n{done.stdout}")
    _pg_tool(backing, "psql", ["-qAt"], stdin="DELETE FROM jobs WHERE created_by = 'pgbench';")
    return float(found.group(1))


def redis_xadd(backing: Mapping[str, str], requests: int = 100_000) -> float:
    """XADDs/s Redis alone takes (redis-benchmark, 32 clients, one stream)."""
    done = subprocess.run(
        [
            "redis-benchmark",
            "-h",
            backing["REDIS_HOST"],
            "-p",
            backing["REDIS_PORT"],
            "-c",
            "32",
            "-n",
            str(requests),
            "-q",
            "--csv",
            "XADD",
            "keel-bench-ceiling",
            "*",
            "data",
            "1",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [line.split(",") for line in done.stdout.splitlines() if line.startswith('"XADD')]
    if not rows:
        raise SystemExit(f"redis-benchmark printed no XADD figure:\n{done.stdout}")
    return float(rows[0][1].strip('"'))
