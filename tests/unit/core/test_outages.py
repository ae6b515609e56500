"""Which errors say a dependency is down (503 + Retry-After) and which are bugs (500)."""

from __future__ import annotations

import asyncpg.exceptions as pg
import pytest
import redis.exceptions

from keel.outages import unavailable_dependency


@pytest.mark.parametrize(
    "error",
    [
        pg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        pg.CannotConnectNowError("the database system is starting up"),
        pg.AdminShutdownError("terminating connection due to administrator command"),
        pg.TooManyConnectionsError("sorry, too many clients already"),
    ],
)
def test_asyncpg_connection_errors_are_a_database_outage(error: Exception) -> None:
    assert unavailable_dependency(error) == "database"


def test_wrapped_driver_error_is_found_in_the_chain() -> None:
    outer = RuntimeError("while reading a job")
    outer.__cause__ = pg.ConnectionDoesNotExistError("gone")
    assert unavailable_dependency(outer) == "database"


@pytest.mark.parametrize(
    "error",
    [
        pg.UniqueViolationError("duplicate key"),  # a bug or a race, not an outage
        pg.UndefinedTableError('relation "jobs" does not exist'),
        ValueError("08000"),  # the SQLSTATE text alone is not an asyncpg error
    ],
)
def test_other_errors_are_not_outages(error: Exception) -> None:
    assert unavailable_dependency(error) is None


def test_redis_connection_error_is_a_redis_outage() -> None:
    assert unavailable_dependency(redis.exceptions.ConnectionError("refused")) == "redis"
