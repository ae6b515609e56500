"""The calls the rest of Keel makes: one line at each place something worth counting happens."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

from keel.metrics import families

# The runner's outcome words -> the metric's (a retry is "retrying" in logs, "retried" here).
_OUTCOMES = {"succeeded": "succeeded", "failed": "failed", "retrying": "retried"}

# Free-text refusal reasons (logged in full) -> a small fixed set of label values.
_AUTH_CLASSES = (
    ("rate limited", "rate_limited"),
    ("Expired", "expired"),
    ("revoked", "revoked"),
    ("replayed", "replayed"),
    ("timestamp outside", "stale_timestamp"),
    ("signature mismatch", "bad_signature"),
    ("python-jose", "bad_signature"),
    ("both a bearer", "ambiguous"),
    ("algorithm", "not_allowed"),
    ("kid", "not_allowed"),
    ("critical", "not_allowed"),
    ("too long", "malformed"),
    ("longer than", "malformed"),
    ("malformed", "malformed"),
    ("not a compact", "malformed"),
    ("unreadable", "malformed"),
    ("bad ", "malformed"),
    ("not a user id", "malformed"),
)


def job_accepted(queue: str, kind: str) -> None:
    families.JOBS_ACCEPTED.labels(queue, kind).inc()


def job_reclaimed(row: Any) -> None:
    families.JOBS_RECLAIMED.labels(row.queue, row.kind).inc()


async def observe_job(row: Any, run: Callable[[Any], Awaitable[str]]) -> str:
    """Run one claimed attempt, counting its start, wait, run time and outcome."""
    queue, kind = row.queue, row.kind
    due = row.run_after or row.created_at
    if due is not None:
        waited = (dt.datetime.now(dt.UTC) - due).total_seconds()
        families.JOB_WAIT_SECONDS.labels(queue, kind).observe(max(0.0, waited))
    families.JOBS_STARTED.labels(queue, kind).inc()
    families.JOBS_IN_FLIGHT.inc()
    began = time.perf_counter()
    try:
        outcome = await run(row)
    finally:
        families.JOBS_IN_FLIGHT.dec()
    families.JOB_RUN_SECONDS.labels(queue, kind).observe(time.perf_counter() - began)
    families.JOBS_FINISHED.labels(queue, kind, _OUTCOMES.get(outcome, "superseded")).inc()
    return outcome


def redis_reconnect(client: str) -> None:
    families.REDIS_RECONNECTS.labels(client).inc()


def auth_reason_class(reason: str) -> str:
    for marker, label in _AUTH_CLASSES:
        if marker in reason:
            return label
    return "invalid"


def auth_refused(reason: str) -> None:
    families.AUTH_REFUSALS.labels(auth_reason_class(reason)).inc()
