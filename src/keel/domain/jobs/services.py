"""The rules of jobs: accept (idempotently), read, page, cancel, and the worker's transitions.

The job row is the source of truth. Every transition is one conditional UPDATE (``WHERE
status = ...``), so two workers holding the same message, or a redelivered message, can never
both run a job or both record its outcome: delivery is at-least-once, effect is once.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from loguru import logger
from sqlalchemy import (
    BigInteger,
    Row,
    Table,
    any_,
    bindparam,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.batching import Batcher
from keel.db.types import UtcDateTime
from keel.domain.jobs.kinds import Effect, get_kind
from keel.domain.jobs.models import TERMINAL, Job, JobStatus
from keel.domain.jobs.schemas import JobAccepted, JobPage, JobView
from keel.ids import Snowflake
from keel.lifecycle import describe_exception
from keel.metrics.hooks import job_accepted

jobs: Table = Job.__table__  # type: ignore[assignment]
# Hot-path statements built once with bind parameters (building one costs ~0.1 ms).
_INSERT = jobs.insert()
_BY_ID = select(jobs).where(jobs.c.id == bindparam("job_id"))
_CLAIM = (
    update(jobs)
    .where(
        jobs.c.id == bindparam("job_id"),
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
_CLAIM_RETURNING = _CLAIM.returning(*jobs.c)
# PostgreSQL only (batched paths): array parameters keep one cached statement per shape.
_CLAIM_MANY = (
    update(jobs)
    .where(
        jobs.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger))),
        jobs.c.status == JobStatus.QUEUED.value,
        or_(jobs.c.run_after.is_(None), jobs.c.run_after <= bindparam("now")),
    )
    .values(
        status=JobStatus.RUNNING.value,
        worker_id=bindparam("worker_id"),
        attempts=jobs.c.attempts + 1,
        started_at=bindparam("now"),
    )
    .returning(*jobs.c)
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
Enqueue = Callable[[int, str], Awaitable[None]]
MAX_PAGE = 200


class JobNotFoundError(LookupError):
    pass


class JobConflictError(Exception):
    """The job is not in a state that allows the operation (e.g. cancelling a running job)."""


class EnqueueFailedError(Exception):
    """The broker did not take the message; the job was not accepted."""


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, each statement committed on its own (one round trip, no BEGIN)."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def to_view(row: Row[Any] | Any) -> JobView:
    return JobView(
        id=str(row.id),
        kind=row.kind,
        queue=row.queue,
        status=row.status,
        payload=row.payload,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        result=row.result,
        error=row.error,
        idempotency_key=row.idempotency_key,
        worker_id=row.worker_id,
        created_at=_aware(row.created_at),
        started_at=_aware(row.started_at),
        finished_at=_aware(row.finished_at),
    )


def _aware(value: dt.datetime | None) -> Any:
    # Core SELECTs on SQLite/MySQL may hand back naive UTC datetimes.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def parse_job_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise JobNotFoundError(f"job id {text!r} is not a number") from None
    if not 0 < value < 2**63:
        raise JobNotFoundError(f"job id {text!r} is out of range")
    return value


class JobService:
    """API side: accept, read, page, cancel."""

    def __init__(
        self, engine: AsyncEngine, ids: Snowflake, enqueue: Enqueue, max_attempts: int
    ) -> None:
        # Every operation here is one statement: autocommit saves the BEGIN/COMMIT round trips.
        self._engine = autocommit(engine)
        self._ids = ids
        self._enqueue = enqueue
        self._max_attempts = max_attempts
        # Jobs without an idempotency key accepted together share one multi-row INSERT.
        self._inserts: Batcher[dict[str, Any], None] = Batcher(self._insert_batch)

    async def _insert_batch(self, rows: Sequence[dict[str, Any]]) -> list[None]:
        async with self._engine.connect() as conn:
            await conn.execute(_INSERT, list(rows) if len(rows) > 1 else rows[0])
        return [None] * len(rows)

    async def _by_key(self, key: str) -> Row[Any] | None:
        async with self._engine.connect() as conn:
            result = await conn.execute(select(jobs).where(jobs.c.idempotency_key == key))
            return result.first()

    async def create(
        self, kind_name: str, payload: dict[str, Any], idempotency_key: str | None = None
    ) -> JobAccepted:
        kind = get_kind(kind_name)
        kind.parse(payload)  # raises InvalidPayloadError before anything is stored
        if idempotency_key is not None:
            existing = await self._by_key(idempotency_key)
            if existing is not None:
                return JobAccepted(
                    id=str(existing.id),
                    status=existing.status,
                    queue=existing.queue,
                    created=False,
                )
        job_id = self._ids.next_id()
        values = {
            "id": job_id,
            "kind": kind.name,
            "queue": kind.queue,
            "payload": payload,
            "status": JobStatus.QUEUED.value,
            "attempts": 0,
            "max_attempts": self._max_attempts,
            "idempotency_key": idempotency_key,
            "created_at": _now(),
        }
        try:
            if idempotency_key is None:
                await self._inserts.submit(values)
            else:
                async with self._engine.connect() as conn:
                    await conn.execute(_INSERT, values)
        except IntegrityError:
            if idempotency_key is None:
                raise
            existing = await self._by_key(idempotency_key)  # lost a race for the same key
            if existing is None:
                raise
            return JobAccepted(
                id=str(existing.id), status=existing.status, queue=existing.queue, created=False
            )
        try:
            await self._enqueue(job_id, kind.queue)
        except Exception as exc:
            # Not accepted after all: drop the row so no job waits for a message never sent.
            async with self._engine.begin() as conn:
                await conn.execute(
                    delete(jobs).where(jobs.c.id == job_id, jobs.c.status == JobStatus.QUEUED)
                )
            cause = exc.__cause__ or exc  # taskiq wraps the broker's error in SendTaskError
            # The cause (hosts, ports) goes to the log; the client learns only to retry.
            logger.warning("job {} not enqueued: {}", job_id, describe_exception(cause))
            raise EnqueueFailedError("the job queue is unavailable; retry shortly") from exc
        job_accepted(kind.queue, kind.name)
        return JobAccepted(id=str(job_id), status=JobStatus.QUEUED.value, queue=kind.queue)

    async def get(self, job_id: int) -> JobView:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_BY_ID, {"job_id": job_id})).first()
        if row is None:
            raise JobNotFoundError(f"job {job_id} not found")
        return to_view(row)

    async def page(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        cursor: int | None = None,
    ) -> JobPage:
        limit = max(1, min(limit, MAX_PAGE))
        query = select(jobs).order_by(jobs.c.id.desc()).limit(limit + 1)
        if status:
            query = query.where(jobs.c.status == status)
        if kind:
            query = query.where(jobs.c.kind == kind)
        if cursor is not None:
            query = query.where(jobs.c.id < cursor)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return JobPage(
            items=[to_view(row) for row in rows],
            next_cursor=str(rows[-1].id) if more and rows else None,
        )

    async def cancel(self, job_id: int) -> JobView:
        async with self._engine.begin() as conn:
            changed = await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == JobStatus.QUEUED)
                .values(status=JobStatus.CANCELLED.value, finished_at=_now())
            )
        view = await self.get(job_id)
        if changed.rowcount == 0:
            raise JobConflictError(
                f"job {job_id} is {view.status}; only queued jobs can be cancelled"
            )
        return view


async def stale_queued(
    engine: AsyncEngine, older_than: dt.timedelta, limit: int = 500
) -> Sequence[Any]:
    """(id, queue) of jobs queued longer than ``older_than`` (their message may be lost)."""
    cutoff = _now() - older_than
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
        params = {"job_id": job_id, "worker_id": worker_id, "now": _now()}
        async with self._engine.connect() as conn:
            if self._returning:
                row = (await conn.execute(_CLAIM_RETURNING, params)).first()
            else:
                changed = await conn.execute(_CLAIM, params)
                row = None
                if changed.rowcount == 1:
                    row = (await conn.execute(_BY_ID, {"job_id": job_id})).first()
            if row is not None:
                return ClaimResult(Claim.CLAIMED, job=row)
            current = (await conn.execute(_BY_ID, {"job_id": job_id})).first()
        return self._why_not(current, worker_id)

    @property
    def batches(self) -> bool:
        """Whether claims and successes can be grouped into one statement (PostgreSQL)."""
        return self._engine.dialect.name == "postgresql"

    async def claim_many(self, job_ids: Sequence[int], worker_id: str) -> list[Any | None]:
        """Claim several queued jobs in one statement: the row per id, None where not claimed
        (the caller then claims that one alone, which also says why)."""
        params = {"ids": list(set(job_ids)), "worker_id": worker_id, "now": _now()}
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
            "finished_at": _now(),
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
        run_after = _aware(row.run_after)
        wait = (run_after - _now()).total_seconds() if run_after is not None else 0.0
        return ClaimResult(Claim.NOT_YET, wait_s=max(0.0, wait))

    async def take_over(self, job_id: int, dead_owner: str | None, worker_id: str) -> ClaimResult:
        """Claim a job whose worker died mid-run (its message was reclaimed)."""
        now = _now()
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
        params = {"job_id": job_id, "owner": worker_id, "result": result, "finished_at": _now()}
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
            finished_at=_now(),
        )

    async def retry_later(self, job_id: int, worker_id: str, error: str, delay: float) -> bool:
        return await self._finish(
            job_id,
            worker_id,
            status=JobStatus.QUEUED.value,
            error=error[:4000],
            worker_id=None,
            run_after=_now() + dt.timedelta(seconds=delay),
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

    async def counts(self) -> dict[str, int]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status))
            ).all()
        return {row[0]: int(row[1]) for row in rows}
