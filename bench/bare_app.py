"""The ceilings Keel's HTTP figures are measured against: a bare Litestar app doing the same
work with nothing else (no middleware, no auth, no ORM layer).

Both run with Keel's collector policy (``gc.freeze()`` once started): the strict ceiling.

- ``GET /health/live``: the same body as Keel's liveness probe.
- ``GET /api/jobs/{id}``: the same SELECT by primary key as Keel's read, straight on an asyncpg
  pool (``BARE_DSN``, ``BARE_POOL_SIZE``), answered with the same JSON document (a msgspec
  struct with Keel's fields). Without ``BARE_DSN`` the route is absent.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
from litestar import Litestar, get
from litestar.exceptions import NotFoundException

_SELECT = (
    "SELECT id, kind, queue, payload, status, attempts, max_attempts, result, error, "
    "idempotency_key, created_by, worker_id, run_after, created_at, started_at, finished_at "
    "FROM jobs WHERE id = $1"
)


class Job(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: str
    queue: str
    status: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    result: Any
    error: str | None
    idempotency_key: str | None
    owner: str | None
    worker_id: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


@get("/health/live", sync_to_thread=False)
def live() -> dict[str, str]:
    return {"status": "ok"}


_pool: list[asyncpg.Pool] = []


async def _json_codec(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _no_reset(_: asyncpg.Connection) -> None:
    """No reset query on release (one round trip each): these statements change no session
    state. Keel's driver-level pool does the same (keel.db.direct)."""


@asynccontextmanager
async def _lifespan(_: Litestar) -> AsyncIterator[None]:
    size = int(os.environ.get("BARE_POOL_SIZE", "40"))
    pool = await asyncpg.create_pool(
        os.environ["BARE_DSN"], min_size=size, max_size=size, init=_json_codec, reset=_no_reset
    )
    _pool.append(pool)
    # The same collector policy as Keel's app after its start-up (keel.app): without it, full
    # collections walking Litestar's import-time heap cost the bare app ~20 us per request.
    gc.freeze()
    try:
        yield
    finally:
        await pool.close()


@get("/api/jobs/{job_id:int}")
async def read_job(job_id: int) -> Job:
    row = await _pool[0].fetchrow(_SELECT, job_id)
    if row is None:
        raise NotFoundException(f"job {job_id} not found")
    return Job(
        id=str(row["id"]),
        kind=row["kind"],
        queue=row["queue"],
        status=row["status"],
        payload=row["payload"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        result=row["result"],
        error=row["error"],
        idempotency_key=row["idempotency_key"],
        owner=row["created_by"],
        worker_id=row["worker_id"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


@asynccontextmanager
async def _frozen(_: Litestar) -> AsyncIterator[None]:
    gc.freeze()
    yield


if os.environ.get("BARE_DSN"):
    app = Litestar(route_handlers=[live, read_job], lifespan=[_lifespan], logging_config=None)
else:
    app = Litestar(route_handlers=[live], lifespan=[_frozen], logging_config=None)
