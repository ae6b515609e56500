"""A job kind for the fault tests, loaded into workers as an extra Taskiq module.

``test.count`` sleeps, then records its side effect (one row in ``fault_counter``) in the
transaction that stores the job's success, so the row count shows how often it took effect.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from keel.domain.jobs.kinds import JobContext, JobKind, register

COUNTER_DDL = "CREATE TABLE IF NOT EXISTS fault_counter (job_id BIGINT NOT NULL, worker TEXT)"


class CountPayload(msgspec.Struct, frozen=True):
    seconds: float = 0.0


async def _count(payload: CountPayload, ctx: JobContext) -> dict[str, Any]:
    import asyncio

    await asyncio.sleep(payload.seconds)

    async def effect(conn: AsyncConnection) -> None:
        await conn.execute(
            text("INSERT INTO fault_counter (job_id, worker) VALUES (:id, :worker)"),
            {"id": ctx.job_id, "worker": ctx.worker_id},
        )

    ctx.on_commit(effect)
    return {"counted": ctx.job_id}


register(JobKind("test.count", CountPayload, _count))
