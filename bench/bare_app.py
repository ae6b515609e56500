"""The ceilings Keel's HTTP figures are measured against: a bare Litestar app doing the same
work with nothing else (no middleware, no auth, no ORM layer).

Both run with Keel's collector policy (``gc.freeze()`` once started): the strict ceiling.

- ``GET /health/live``: the same body as Keel's liveness probe.
- ``GET /api/jobs/{id}``: the same SELECT by primary key as Keel's read, straight on an asyncpg
  pool (``BARE_DSN``, ``BARE_POOL_SIZE``), answered with the same JSON document (Keel's own
  ``JobView`` and row mapping). Without ``BARE_DSN`` the route is absent.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import msgspec
from litestar import Litestar, get
from litestar.exceptions import NotFoundException

from keel.domain.jobs.schemas import JobView
from keel.domain.jobs.services import view_of

_SELECT = (
    "SELECT id, kind, queue, payload, status, attempts, max_attempts, result, error, "
    "idempotency_key, created_by, worker_id, run_after, created_at, started_at, finished_at "
    "FROM jobs WHERE id = $1"
)


@get("/health/live", sync_to_thread=False)
def live() -> dict[str, str]:
    return {"status": "ok"}


_pool: list[asyncpg.Pool] = []


async def _json_codec(conn: asyncpg.Connection) -> None:
    # msgspec decodes, as Keel's driver-level pool does (keel.db.direct).
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=json.dumps, decoder=msgspec.json.decode, schema="pg_catalog"
        )


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
async def read_job(job_id: int) -> JobView:
    row = await _pool[0].fetchrow(_SELECT, job_id)
    if row is None:
        raise NotFoundException(f"job {job_id} not found")
    return view_of(row)  # Keel's own struct and row mapping: the same JSON by construction


@asynccontextmanager
async def _frozen(_: Litestar) -> AsyncIterator[None]:
    gc.freeze()
    yield


if os.environ.get("BARE_DSN"):
    app = Litestar(route_handlers=[live, read_job], lifespan=[_lifespan], logging_config=None)
else:
    app = Litestar(route_handlers=[live], lifespan=[_frozen], logging_config=None)
