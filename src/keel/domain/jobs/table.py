"""The jobs table for Core statements, and the helpers every side of the job lifecycle shares.

The API side (:mod:`keel.domain.jobs.services`) and the worker side
(:mod:`keel.domain.jobs.transitions`) run prepared Core statements on the process's one engine
(``keel.db.database``); hot-path statements are built once with bind parameters.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.db.direct import asyncpg_sql
from keel.domain.jobs.models import Job

jobs: Table = Job.__table__  # type: ignore[assignment]
# Building a statement costs ~0.1 ms: the hot ones are built here, once.
BY_ID = select(jobs).where(jobs.c.id == bindparam("job_id"))
# The same statement as asyncpg SQL ($1 = the id), for the driver-level pool (keel.db.direct).
BY_ID_SQL = asyncpg_sql(BY_ID)


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, each statement committed on its own (one round trip, no BEGIN)."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def aware(value: dt.datetime | None) -> Any:
    # Core SELECTs on SQLite/MySQL may hand back naive UTC datetimes.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value
