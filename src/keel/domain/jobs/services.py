"""The API side of jobs: accept (idempotently), read, page, cancel.

The worker side (claim, take over, outcome) is :mod:`keel.domain.jobs.transitions`, the runner
that drives it :mod:`keel.domain.jobs.runner`; every change of a job's status is a conditional
UPDATE on its row, the source of truth.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from loguru import logger
from sqlalchemy import Row, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.batching import Batcher
from keel.db.direct import DirectPool
from keel.domain.jobs.kinds import get_kind
from keel.domain.jobs.models import JobStatus
from keel.domain.jobs.ownership import Viewer
from keel.domain.jobs.schemas import JobAccepted, JobPage, JobView
from keel.domain.jobs.table import BY_ID, BY_ID_SQL, autocommit, aware, jobs, utcnow
from keel.ids import Snowflake
from keel.metrics.hooks import job_accepted
from keel.resilience import describe_exception
from keel.runtime import Enqueue

_INSERT = jobs.insert()
# Checks a caller's cost limits before a job is stored (keel.domain.jobs.limits).
Admission = Callable[[AsyncEngine, str, Any, str | None], Awaitable[None]]
MAX_PAGE = 200


class JobNotFoundError(LookupError):
    pass


class JobConflictError(Exception):
    """The job is not in a state that allows the operation (e.g. cancelling a running job)."""


class IdempotencyConflictError(Exception):
    """The caller reused an idempotency key for a different request (kind or payload)."""


class EnqueueFailedError(Exception):
    """The broker did not take the message; the job was not accepted."""


def to_view(row: Row[Any]) -> JobView:
    return view_of(row._mapping)


def view_of(row: Mapping[Any, Any]) -> JobView:
    """The API's view of a jobs row (a SQLAlchemy row's mapping or an asyncpg record)."""
    return JobView(
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
        created_at=aware(row["created_at"]),
        started_at=aware(row["started_at"]),
        finished_at=aware(row["finished_at"]),
    )


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
        self,
        engine: AsyncEngine,
        ids: Snowflake,
        enqueue: Enqueue,
        max_attempts: int,
        *,
        direct: DirectPool | None = None,
    ) -> None:
        # Every operation here is one statement: autocommit saves the BEGIN/COMMIT round trips.
        self._engine = autocommit(engine)
        # PostgreSQL: the read by id runs on the driver's pool (keel.db.direct), CPU-bound
        # otherwise by SQLAlchemy's per-statement machinery.
        self._direct = direct
        self._ids = ids
        self._enqueue = enqueue
        self._max_attempts = max_attempts
        # Jobs without an idempotency key accepted together share one multi-row INSERT.
        self._inserts: Batcher[dict[str, Any], None] = Batcher(self._insert_batch)

    async def _insert_batch(self, rows: Sequence[dict[str, Any]]) -> list[None]:
        async with self._engine.connect() as conn:
            await conn.execute(_INSERT, list(rows) if len(rows) > 1 else rows[0])
        return [None] * len(rows)

    async def _by_key(self, key: str, owner: str | None) -> Row[Any] | None:
        owned = jobs.c.created_by.is_(None) if owner is None else jobs.c.created_by == owner
        async with self._engine.connect() as conn:
            result = await conn.execute(select(jobs).where(jobs.c.idempotency_key == key, owned))
            return result.first()

    @staticmethod
    def _replay(existing: Row[Any], kind: str, payload: dict[str, Any]) -> JobAccepted:
        """The job a reused key names, if the request is the same one (else 422)."""
        if existing.kind != kind or existing.payload != payload:
            what = "kind" if existing.kind != kind else "payload"
            raise IdempotencyConflictError(
                f"idempotency key {existing.idempotency_key!r} was used for a different "
                f"request (its {what} differs); use a new key for a new job"
            )
        return JobAccepted(
            id=str(existing.id), status=existing.status, queue=existing.queue, created=False
        )

    async def create(
        self,
        kind_name: str,
        payload: dict[str, Any],
        idempotency_key: str | None = None,
        *,
        owner: str | None = None,
        admission: Admission | None = None,
    ) -> JobAccepted:
        """Accept a job for ``owner``; a key the owner used before returns that job (when the
        request is the same) or :class:`IdempotencyConflictError`. ``admission`` checks the
        caller's cost limits before anything is stored."""
        kind = get_kind(kind_name)
        parsed = kind.parse(payload)  # raises InvalidPayloadError before anything is stored
        if idempotency_key is not None:
            existing = await self._by_key(idempotency_key, owner)
            if existing is not None:
                return self._replay(existing, kind.name, payload)
        if admission is not None:
            await admission(self._engine, kind.name, parsed, owner)
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
            "created_by": owner,
            "created_at": utcnow(),
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
            existing = await self._by_key(idempotency_key, owner)  # lost a race for the key
            if existing is None:
                raise
            return self._replay(existing, kind.name, payload)
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

    async def get(self, job_id: int, viewer: Viewer | None = None) -> JobView:
        """The job, or :class:`JobNotFoundError` when there is none or ``viewer`` may not see
        it (the same answer: no existence oracle). No viewer: internal use, unrestricted."""
        row: Mapping[Any, Any] | None
        if self._direct is not None:
            row = await self._direct.fetchrow(BY_ID_SQL, job_id)
        else:
            async with self._engine.connect() as conn:
                found = (await conn.execute(BY_ID, {"job_id": job_id})).first()
            row = None if found is None else found._mapping
        if row is None or (viewer is not None and not viewer.may_see(row["created_by"])):
            raise JobNotFoundError(f"job {job_id} not found")
        return view_of(row)

    async def page(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        cursor: int | None = None,
        owner: str | None = None,
    ) -> JobPage:
        """Newest first; ``owner``: only that owner's jobs (None: everyone's)."""
        limit = max(1, min(limit, MAX_PAGE))
        query = select(jobs).order_by(jobs.c.id.desc()).limit(limit + 1)
        if owner is not None:
            query = query.where(jobs.c.created_by == owner)
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

    async def cancel(self, job_id: int, viewer: Viewer | None = None) -> JobView:
        if viewer is not None:
            await self.get(job_id, viewer)  # 404 for a job the viewer may not see
        async with self._engine.begin() as conn:
            changed = await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == JobStatus.QUEUED)
                .values(status=JobStatus.CANCELLED.value, finished_at=utcnow())
            )
        view = await self.get(job_id)
        if changed.rowcount == 0:
            raise JobConflictError(
                f"job {job_id} is {view.status}; only queued jobs can be cancelled"
            )
        return view
