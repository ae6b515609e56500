"""The driver-level pool (keel.db.direct) on real PostgreSQL: the jobs read it serves is the
same view SQLAlchemy's path gives, ownership still applies, and a down server is an outage."""

from __future__ import annotations

from typing import Any

import pytest

from keel.db.database import Database
from keel.domain.jobs.ownership import Viewer
from keel.domain.jobs.services import JobNotFoundError, JobService
from keel.domain.jobs.transitions import JobTransitions
from keel.ids import Snowflake
from keel.outages import unavailable_dependency
from tests.service.conftest import make_settings
from tests.support import free_port


async def _no_enqueue(job_id: int, queue: str) -> None:
    return None


async def test_direct_read_is_the_sqlalchemy_read(pg_env: dict[str, str]) -> None:
    settings = make_settings(pg_env)
    database = Database(settings)
    assert database.direct is not None
    await database.start()
    try:
        ids = Snowflake(7, epoch_ms=settings.worker.ids_epoch_ms)
        plain = JobService(database.engine, ids, _no_enqueue, max_attempts=3)
        direct = JobService(
            database.engine, ids, _no_enqueue, max_attempts=3, direct=database.direct
        )
        payload: dict[str, Any] = {"text": "zürich \u2603", "nested": {"n": [1, 2.5, None]}}
        queued = int((await plain.create("echo", payload, owner="user:1")).id)
        done = int((await plain.create("echo", {"n": 2}, "key-2", owner="user:1")).id)
        transitions = JobTransitions(database.engine)
        assert (await transitions.claim_many([done], "w1"))[0] is not None
        assert await transitions.succeed_many([(done, {"ok": True, "list": [1]})], "w1") == [True]

        for job_id in (queued, done):
            assert await direct.get(job_id) == await plain.get(job_id)
        finished = await direct.get(done)
        assert finished.status == "succeeded"
        assert finished.result == {"ok": True, "list": [1]}
        assert finished.finished_at is not None
        assert finished.finished_at.utcoffset() is not None
        assert (await direct.get(queued)).payload == payload

        owner, stranger = Viewer("user:1", admin=False), Viewer("user:2", admin=False)
        assert (await direct.get(queued, owner)).id == str(queued)
        with pytest.raises(JobNotFoundError):
            await direct.get(queued, stranger)
        with pytest.raises(JobNotFoundError):
            await direct.get(queued + 1_000_000)
    finally:
        await database.stop()


def test_no_direct_pool_when_off_or_not_postgresql(pg_env: dict[str, str]) -> None:
    assert Database(make_settings({**pg_env, "DB_DIRECT_POOL_SIZE": "0"})).direct is None
    assert Database(make_settings({"DB_TYPE": "sqlite", "DB_DATABASE": ":memory:"})).direct is None


async def test_a_down_server_is_a_database_outage(pg_env: dict[str, str]) -> None:
    settings = make_settings({**pg_env, "DB_PORT": str(free_port()), "DB_CONNECT_TIMEOUT": "2"})
    database = Database(settings)
    assert database.direct is not None
    await database.direct.open()  # connects nothing: a down server does not fail this
    try:
        service = JobService(
            database.engine, Snowflake(8, epoch_ms=0), _no_enqueue, 3, direct=database.direct
        )
        with pytest.raises(OSError) as caught:
            await service.get(1)
        assert unavailable_dependency(caught.value) == "database"
    finally:
        await database.stop()
