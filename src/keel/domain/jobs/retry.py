"""The retry policy of jobs: which failures another attempt may fix, and when it runs.

- A kind's :class:`~keel.domain.jobs.kinds.RetryableJobError`, a timeout or a connection
  error: retried with :func:`retry_delay` up to the job's attempt limit.
- A database step of the runner that fails with a lost connection or an unavailable server
  (:func:`transient`): retried in place a few times (:data:`STORE_ATTEMPTS`), then the message
  stays pending and is delivered again later. A constraint or a bad value is never retried.
"""

from __future__ import annotations

from sqlalchemy.exc import InterfaceError, OperationalError

from keel.domain.jobs.kinds import RetryableJobError
from keel.resilience import backoff

RETRYABLE = (RetryableJobError, TimeoutError, ConnectionError)
# Tries of one database step of the runner, waiting store_delay(attempt) between them.
STORE_ATTEMPTS = 6

# PostgreSQL SQLSTATEs that mean "the server is not available (yet)", not "the data is wrong":
# class 08 (connection exception), 57P01-57P03 (admin/crash shutdown, the database system is
# starting up), 53300 (too many connections). asyncpg reports them as plain DBAPIErrors.
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "57P01", "57P02", "57P03", "53300")


def retry_delay(attempt: int, base: float, cap: float) -> float:
    """Before the next attempt of a job: ``base * 2**(attempt-1)``, capped, with jitter."""
    return backoff(attempt, base, cap)


def store_delay(attempt: int) -> float:
    """Before retrying a database step: 0.4 s, 0.8 s, ... capped at 5 s."""
    return backoff(attempt + 1, 0.2, 5.0, jitter=False)


def transient(exc: BaseException) -> bool:
    """A lost connection or an unavailable server: waiting may fix it (a constraint won't)."""
    if isinstance(exc, OSError | OperationalError | InterfaceError):
        return True
    if getattr(exc, "connection_invalidated", False):
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_TRANSIENT_SQLSTATE_PREFIXES)
