"""The worker side of a job's life: claim, take over, and record the outcome.

The job row is the source of truth. Every transition is one conditional UPDATE (``WHERE
status = ...``), so two workers holding the same message, or a redelivered message, can never
both run a job or both record its outcome: delivery is at-least-once, effect is once. Also the
sweeper's rule: which queued jobs may have lost their message (:func:`stale_queued`).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from loguru import logger
from sqlalchemy import BigInteger, any_, bindparam, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ColumnElement, Update

from keel.db.types import UtcDateTime
from keel.domain.jobs.kinds import Effect
from keel.domain.jobs.models import TERMINAL, JobStatus
from keel.domain.jobs.table import BY_ID, autocommit, aware, jobs, utcnow


def _claim(which: ColumnElement[bool]) -> Update:
    """queued -> running for the rows ``which`` names, once ``run_after`` has passed."""
    return (
        update(jobs)
        .where(
            which,
            jobs.c.status == JobStatus.QUEUED.value,
            or_(jobs.c.run_after.is_(None), jobs.c.run_after <= bindparam("now")),
        )
        .values(
            status=JobStatus.RUNNING.value,
            worker_id=bindparam("worker_id"),
            attempts=jobs.c.attempts + 1,
            started_at=bindparam("now"),
        )
    )


_CLAIM = _claim(jobs.c.id == bindparam("job_id"))
_CLAIM_RETURNING = _CLAIM.returning(*jobs.c)
# PostgreSQL only (batched paths): array parameters keep one cached statement per shape.
_CLAIM_MANY = _claim(jobs.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger)))).returning(
    *jobs.c
)
_SUCCEED_MANY = text(
    "UPDATE jobs SET status = 'succeeded', result = outcome.result, error = NULL, "
    "finished_at = :finished_at "
    "FROM unnest(CAST(:ids AS BIGINT[]), CAST(:results AS JSONB[])) AS outcome (id, result) "
    "WHERE jobs.id = outcome.id AND jobs.status = 'running' AND jobs.worker_id = :owner "
    "RETURNING jobs.id"
).bindparams(bindparam("finished_at", type_=UtcDateTime()))
_SUCCEED = (
    update(jobs)
    .where(
        jobs.c.id == bindparam("job_id"),
        jobs.c.status == JobStatus.RUNNING.value,
        jobs.c.worker_id == bindparam("owner"),
    )
    .values(
        status=JobStatus.SUCCEEDED.value,
        result=bindparam("result", type_=jobs.c.result.type),
        error=None,
        finished_at=bindparam("finished_at"),
    )
)


async def stale_queued(
    engine: AsyncEngine, older_than: dt.timedelta, limit: int = 500
) -> Sequence[Any]:
    """(id, queue) of jobs queued longer than ``older_than`` (their message may be lost)."""
    cutoff = utcnow() - older_than
    async with engine.connect() as conn:
        result = await conn.execute(
            select(jobs.c.id, jobs.c.queue)
            .where(
                jobs.c.status == JobStatus.QUEUED,
                jobs.c.created_at < cutoff,
                or_(jobs.c.run_after.is_(None), jobs.c.run_after < cutoff),
            )
            .order_by(jobs.c.id)
            .limit(limit)
        )
        return result.all()


class Claim(enum.Enum):
    CLAIMED = "claimed"  # this worker now runs the job
    MISSING = "missing"  # no such row (never accepted)
    TERMINAL = "terminal"  # already finished: a redelivery
    RUNNING = "running"  # another worker holds it
    NOT_YET = "not_yet"  # waiting out a retry backoff


@dataclass(frozen=True)
class ClaimResult:
    outcome: Claim
    job: Any | None = None  # the row, when claimed
    owner: str | None = None  # the worker holding it, when RUNNING
    wait_s: float = 0.0  # when NOT_YET


class JobTransitions:
    """Worker side: claim, take over, and record the outcome, each conditional on the row."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = autocommit(engine)
        # Success with effects: the row update and the effects commit together.
        self._transactional = engine
        self._returning = bool(engine.dialect.update_returning)

    async def claim(self, job_id: int, worker_id: str) -> ClaimResult:
        params = {"job_id": job_id, "worker_id": worker_id, "now": utcnow()}
        async with self._engine.connect() as conn:
            if self._returning:
                row = (await conn.execute(_CLAIM_RETURNING, params)).first()
            else:
                changed = await conn.execute(_CLAIM, params)
                row = None
                if changed.rowcount == 1:
                    row = (await conn.execute(BY_ID, {"job_id": job_id})).first()
            if row is not None:
                return ClaimResult(Claim.CLAIMED, job=row)
            current = (await conn.execute(BY_ID, {"job_id": job_id})).first()
        return self._why_not(current, worker_id)

    @property
    def batches(self) -> bool:
        """Whether claims and successes can be grouped into one statement (PostgreSQL)."""
        return self._engine.dialect.name == "postgresql"

    async def claim_many(self, job_ids: Sequence[int], worker_id: str) -> list[Any | None]:
        """Claim several queued jobs in one statement: the row per id, None where not claimed
        (the caller then claims that one alone, which also says why)."""
        params = {"ids": list(set(job_ids)), "worker_id": worker_id, "now": utcnow()}
        async with self._engine.connect() as conn:
            rows = (await conn.execute(_CLAIM_MANY, params)).all()
        by_id = {row.id: row for row in rows}
        # A second delivery of the same job in this batch gets None: only one may run it.
        return [by_id.pop(job_id, None) for job_id in job_ids]

    async def succeed_many(self, outcomes: Sequence[tuple[int, Any]], worker_id: str) -> list[bool]:
        """Record several successes in one statement (PostgreSQL: UPDATE ... FROM unnest)."""
        params = {
            "ids": [job_id for job_id, _ in outcomes],
            "results": [msgspec.json.encode(result).decode() for _, result in outcomes],
            "finished_at": utcnow(),
            "owner": worker_id,
        }
        async with self._engine.connect() as conn:
            stored = {row[0] for row in (await conn.execute(_SUCCEED_MANY, params)).all()}
        return [job_id in stored for job_id, _ in outcomes]

    @staticmethod
    def _why_not(row: Any | None, worker_id: str) -> ClaimResult:
        if row is None:
            return ClaimResult(Claim.MISSING)
        if row.status in TERMINAL:
            return ClaimResult(Claim.TERMINAL)
        if row.status == JobStatus.RUNNING:
            return ClaimResult(Claim.RUNNING, owner=row.worker_id)
        # Still queued: a retry's backoff not over yet (or it just ended): claim again then.
        run_after = aware(row.run_after)
        wait = (run_after - utcnow()).total_seconds() if run_after is not None else 0.0
        return ClaimResult(Claim.NOT_YET, wait_s=max(0.0, wait))

    async def take_over(self, job_id: int, dead_owner: str | None, worker_id: str) -> ClaimResult:
        """Claim a job whose worker died mid-run (its message was reclaimed)."""
        now = utcnow()
        owner_match = (
            jobs.c.worker_id.is_(None) if dead_owner is None else jobs.c.worker_id == dead_owner
        )
        async with self._engine.begin() as conn:
            changed = await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == JobStatus.RUNNING, owner_match)
                .values(worker_id=worker_id, attempts=jobs.c.attempts + 1, started_at=now)
            )
            row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).first()
        if changed.rowcount == 1:
            logger.warning("job {} taken over from dead worker {}", job_id, dead_owner)
            return ClaimResult(Claim.CLAIMED, job=row)
        return self._why_not(row, worker_id)

    async def succeed(
        self, job_id: int, worker_id: str, result: Any, effects: Sequence[Effect] = ()
    ) -> bool:
        engine = self._transactional if effects else self._engine
        params = {"job_id": job_id, "owner": worker_id, "result": result, "finished_at": utcnow()}
        async with engine.begin() as conn:
            changed = await conn.execute(_SUCCEED, params)
            if changed.rowcount != 1:
                return False
            for effect in effects:
                await effect(conn)
        return True

    async def fail(self, job_id: int, worker_id: str, error: str) -> bool:
        return await self._finish(
            job_id,
            worker_id,
            status=JobStatus.FAILED.value,
            error=error[:4000],
            finished_at=utcnow(),
        )

    async def retry_later(self, job_id: int, worker_id: str, error: str, delay: float) -> bool:
        return await self._finish(
            job_id,
            worker_id,
            status=JobStatus.QUEUED.value,
            error=error[:4000],
            worker_id=None,
            run_after=utcnow() + dt.timedelta(seconds=delay),
        )

    async def _finish(self, job_id: int, owner: str, **values: Any) -> bool:
        async with self._engine.begin() as conn:
            changed = await conn.execute(
                update(jobs)
                .where(
                    jobs.c.id == job_id,
                    jobs.c.status == JobStatus.RUNNING,
                    jobs.c.worker_id == owner,
                )
                .values(**values)
            )
        return bool(changed.rowcount == 1)
