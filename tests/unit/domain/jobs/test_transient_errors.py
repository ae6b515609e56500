"""Which database errors the worker rides out (the message is redelivered) vs fails the job for."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from keel.domain.jobs.retry import transient


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "sqlstate",
    ["57P03", "57P01", "57P02", "08006", "08001", "53300"],
    ids=[
        "starting-up",
        "admin-shutdown",
        "crash-shutdown",
        "connection-failure",
        "cannot-connect",
        "too-many-connections",
    ],
)
def test_server_unavailable_states_aretransient(sqlstate: str) -> None:
    error = DBAPIError("UPDATE jobs ...", {}, _DriverError(sqlstate))
    assert transient(error)


@pytest.mark.parametrize("sqlstate", ["23505", "22P02", "42P01"])
def test_data_and_schema_errors_are_nottransient(sqlstate: str) -> None:
    assert not transient(IntegrityError("INSERT ...", {}, _DriverError(sqlstate)))


def test_lost_socket_istransient() -> None:
    assert transient(ConnectionResetError("peer reset"))
