"""The jobs service and runner on MariaDB (the MySQL path: no RETURNING, no group commit)."""

from __future__ import annotations

from typing import Any

from keel.db.engine import sqlalchemy_config
from keel.db.migrate import migrate
from keel.domain.jobs.runner import JobRunner
from keel.domain.jobs.services import JobService
from keel.ids import Snowflake
from tests.service.conftest import make_settings
from tests.service.servers import MariaDb


async def test_jobs_lifecycle_on_mariadb(mariadb_server: MariaDb) -> None:
    env = {
        **mariadb_server.env(mariadb_server.create_database("keel_jobs")),
        "JOB_RETRY_BACKOFF": "0.01",
    }
    settings = make_settings(env)
    await migrate(settings)
    engine = sqlalchemy_config(settings).get_engine()
    sent: list[int] = []
    acks: list[int] = []

    async def enqueue(job_id: int, queue: str) -> None:
        sent.append(job_id)

    async def ack() -> None:
        acks.append(1)

    try:
        service = JobService(
            engine, Snowflake(2, epoch_ms=settings.worker.ids_epoch_ms), enqueue, max_attempts=3
        )
        runner = JobRunner(settings, engine, None, "maria-worker", enqueue)
        assert not runner.transitions.batches

        echo = await service.create("echo", {"hello": "maria"}, idempotency_key="k-1")
        again = await service.create("echo", {"hello": "maria"}, idempotency_key="k-1")
        assert again.id == echo.id
        assert again.created is False
        assert await runner.execute(int(echo.id), ack) == "succeeded"
        assert await runner.execute(int(echo.id), ack) == "terminal"
        done = await service.get(int(echo.id))
        assert done.result == {"hello": "maria"}
        assert done.finished_at is not None
        assert done.started_at is not None
        assert done.finished_at >= done.started_at  # microseconds survive on MariaDB

        flaky = await service.create("sleep", {"seconds": 0, "fail_attempts": 1})
        outcomes: list[Any] = [await runner.execute(int(flaky.id), ack) for _ in range(2)]
        assert outcomes == ["retrying", "succeeded"]
        assert (await service.get(int(flaky.id))).attempts == 2

        queued = await service.create("sleep", {"seconds": 1})
        cancelled = await service.cancel(int(queued.id))
        assert cancelled.status == "cancelled"
        page = await service.page(limit=2)
        assert [item.id for item in page.items] == [queued.id, flaky.id]
        assert page.next_cursor == flaky.id
    finally:
        await engine.dispose()
