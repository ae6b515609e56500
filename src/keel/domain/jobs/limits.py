"""What one caller's jobs may cost: how many at once, how long a ``sleep``, how big a
``checksum``. Checked when a job is accepted, before anything is stored.

Without these, any caller could fill every worker slot with hour-long sleeps or keep a CPU busy
with 4 GiB checksums. Past ``JOB_MAX_ACTIVE_PER_OWNER`` queued or running jobs a caller gets
429 + ``Retry-After`` until some finish; a payload over a kind's bound is a 422 naming the
setting. Prod ships tighter bounds (configs/prod/app.env).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.config.sections.worker import WorkerSettings
from keel.db.direct import DirectPool, asyncpg_sql
from keel.domain.jobs.kinds import ChecksumPayload, InvalidPayloadError, SleepPayload
from keel.domain.jobs.models import Job, JobStatus

# The active statuses as SQL literals: the statement then has only ``owner`` and ``limit`` to
# bind, so the same statement compiles to the direct pool's SQL ($1 owner, $2 limit).
_ACTIVE: list[ColumnElement[Any]] = [
    literal_column(f"'{status.value}'") for status in (JobStatus.QUEUED, JobStatus.RUNNING)
]
_jobs = Job.__table__
# How many of an owner's jobs are active, counting no further than the limit: on the
# (created_by, status) index that reads at most ``limit`` entries however many jobs it had.
_ACTIVE_UP_TO_LIMIT = select(func.count()).select_from(
    select(_jobs.c.id)
    .where(_jobs.c.created_by == bindparam("owner"), _jobs.c.status.in_(_ACTIVE))
    .limit(bindparam("limit"))
    .subquery()
)
_ACTIVE_UP_TO_LIMIT_SQL = asyncpg_sql(_ACTIVE_UP_TO_LIMIT)
# A caller over its limit waits for jobs to finish; a few seconds is the usual job length.
RETRY_AFTER_SECONDS = 5


class TooManyActiveJobsError(Exception):
    def __init__(self, limit: int) -> None:
        self.retry_after = RETRY_AFTER_SECONDS
        self.headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}  # keel.http_errors sends them
        super().__init__(
            f"{limit} jobs of yours are queued or running (JOB_MAX_ACTIVE_PER_OWNER); "
            "wait for some to finish"
        )


@dataclass(frozen=True, slots=True)
class JobLimits:
    max_active_per_owner: int
    max_sleep_seconds: float
    max_checksum_mebibytes: int
    # PostgreSQL: the count runs on the driver's pool (keel.db.direct), as the read by id does.
    direct: DirectPool | None = None

    @classmethod
    def from_settings(cls, worker: WorkerSettings, direct: DirectPool | None = None) -> JobLimits:
        return cls(
            max_active_per_owner=worker.max_active_jobs_per_owner,
            max_sleep_seconds=worker.max_sleep_seconds,
            max_checksum_mebibytes=worker.max_checksum_mebibytes,
            direct=direct,
        )

    def check_payload(self, kind: str, parsed: Any) -> None:
        if isinstance(parsed, SleepPayload) and parsed.seconds > self.max_sleep_seconds:
            raise InvalidPayloadError(
                f"payload for kind {kind!r}: seconds {parsed.seconds:g} is above "
                f"JOB_MAX_SLEEP_SECONDS ({self.max_sleep_seconds:g})"
            )
        if isinstance(parsed, ChecksumPayload) and parsed.mebibytes > self.max_checksum_mebibytes:
            raise InvalidPayloadError(
                f"payload for kind {kind!r}: mebibytes {parsed.mebibytes} is above "
                f"JOB_MAX_CHECKSUM_MEBIBYTES ({self.max_checksum_mebibytes})"
            )

    async def __call__(
        self, engine: AsyncEngine, kind: str, parsed: Any, owner: str | None
    ) -> None:
        """The :data:`~keel.domain.jobs.services.Admission` check for one new job."""
        self.check_payload(kind, parsed)
        if owner is None:
            return
        limit = self.max_active_per_owner
        if self.direct is not None:
            row = await self.direct.fetchrow(_ACTIVE_UP_TO_LIMIT_SQL, owner, limit)
            active = int(row[0])
        else:
            async with engine.connect() as conn:
                query = await conn.execute(_ACTIVE_UP_TO_LIMIT, {"owner": owner, "limit": limit})
                active = int(query.scalar_one())
        if active >= self.max_active_per_owner:
            raise TooManyActiveJobsError(self.max_active_per_owner)
