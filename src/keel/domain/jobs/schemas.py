"""Request and response bodies of the jobs API (msgspec).

Ids are 64-bit snowflakes: JSON carries them as strings, since JavaScript numbers lose
precision above 2**53.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec

IdempotencyKey = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class CreateJob(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    idempotency_key: IdempotencyKey | None = None


class JobAccepted(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    status: str
    queue: str
    # False when the idempotency key matched an existing job (nothing new was enqueued).
    created: bool = True


class JobView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: str
    queue: str
    status: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    # Any JSON value the kind returned (null until it succeeded).
    result: Any
    error: str | None
    idempotency_key: str | None
    # "user:<id>" or "key:<id>" (null for jobs from before ownership).
    owner: str | None
    worker_id: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class JobPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[JobView]
    # Pass as ?cursor= to get the next (older) page; null on the last page.
    next_cursor: str | None
