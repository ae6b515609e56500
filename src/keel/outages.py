"""A dependency that is down is the server's *temporary* state, not a bug: 503 + Retry-After.

When PostgreSQL or Redis goes away while the API runs, the drivers raise connection errors from
deep inside a request. Left to the catch-all they were 500s with a traceback per request. Here
the exception chain is inspected: a connection-level failure of the database (SQLAlchemy's
``OperationalError``/``InterfaceError``, a pool timeout, a socket error under them) or of Redis
(``redis.exceptions.ConnectionError``/``TimeoutError``) becomes ``503 {detail: "<what>
unavailable; retry shortly"}`` with ``Retry-After``, and one warning per dependency per minute
says why (without the traceback: the cause is known).
"""

from __future__ import annotations

import time
import traceback

import redis.exceptions
import sqlalchemy.exc
from loguru import logger

from keel.resilience import describe_exception

RETRY_AFTER_SECONDS = 5
_LOG_EVERY_SECONDS = 60.0
_DATABASE_ERRORS = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)
_REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# asyncpg's own errors (keel.db.direct runs statements on the driver without SQLAlchemy) that
# mean the server is unreachable: connection exceptions (class 08), shutting down or starting
# (57P01-57P03), out of connections (53300). Matched by SQLSTATE: no asyncpg import here.
_PG_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
_last_logged: dict[str, float] = {}
_suppressed: dict[str, int] = {}


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


# A bare socket error (a batched INSERT hands the driver's own exception on) says which
# dependency failed only by where it was raised: the driver's package in the traceback.
_DRIVER_PACKAGES = {
    "database": ("/asyncpg/", "/sqlalchemy/", "/aiosqlite/", "/asyncmy/", "/oracledb/"),
    "redis": ("/redis/",),
}


def _raised_in(err: BaseException) -> str | None:
    files = [frame.filename for frame in traceback.extract_tb(err.__traceback__)]
    for what, packages in _DRIVER_PACKAGES.items():
        if any(package in name for name in files for package in packages):
            return what
    return None


def _driver_outage(err: BaseException) -> bool:
    sqlstate = getattr(err, "sqlstate", None)
    return (
        type(err).__module__.startswith("asyncpg")
        and isinstance(sqlstate, str)
        and sqlstate.startswith(_PG_UNAVAILABLE_SQLSTATES)
    )


def unavailable_dependency(exc: BaseException) -> str | None:
    """``"database"`` or ``"redis"`` when ``exc`` says that one is unreachable, else None."""
    chain = _chain(exc)
    for err in chain:
        if isinstance(err, _REDIS_ERRORS):
            return "redis"
        if isinstance(err, _DATABASE_ERRORS):
            return "database"
        if isinstance(err, sqlalchemy.exc.DBAPIError) and err.connection_invalidated:
            return "database"
        if _driver_outage(err):
            return "database"
    for err in chain:
        if isinstance(err, OSError):  # ConnectionError, TimeoutError, socket errors
            return _raised_in(err)
    return None


def log_outage(what: str, exc: BaseException, request: str) -> None:
    now = time.monotonic()
    if now - _last_logged.get(what, -_LOG_EVERY_SECONDS) < _LOG_EVERY_SECONDS:
        _suppressed[what] = _suppressed.get(what, 0) + 1
        return
    _last_logged[what] = now
    repeats = _suppressed.pop(what, 0)
    again = f" ({repeats} more 503s since the last line)" if repeats else ""
    logger.warning(
        "{} unavailable, answering 503 ({}): {}{}",
        what,
        request,
        describe_exception(_chain(exc)[-1]),
        again,
    )
