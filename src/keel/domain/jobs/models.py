"""The ``jobs`` table."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from keel.db.base import Base
from keel.db.types import JsonDocument, UtcDateTime


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # Cursor pages: newest first, optionally filtered by status or kind.
        Index("ix_jobs_status_id", "status", "id"),
        Index("ix_jobs_kind_id", "kind", "id"),
        # A caller's own jobs, newest first; its idempotency keys are its own.
        Index("ix_jobs_created_by_id", "created_by", "id"),
        # The admission check: an owner's queued and running jobs (keel.domain.jobs.limits).
        Index("ix_jobs_created_by_status", "created_by", "status"),
        UniqueConstraint(
            "created_by", "idempotency_key", name="uq_jobs_created_by_idempotency_key"
        ),
    )

    # A snowflake from keel.ids: time-ordered, assigned by the API, never by the database.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    result: Mapped[Any | None] = mapped_column(JsonDocument, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The job's owner, who created it: "user:<users.id>" or "key:<api_keys.id>"
    # (keel.domain.jobs.ownership); NULL for jobs from before ownership (admins only).
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # After a retryable failure: not before this time (exponential backoff).
    run_after: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
