"""Group commit on PostgreSQL: concurrent and duplicate deliveries still run each job once."""

from __future__ import annotations

import asyncio
from typing import Any

from keel.db.engine import sqlalchemy_config
from keel.domain.jobs.kinds import JobKind, register
from keel.domain.jobs.runner import JobRunner
from keel.domain.jobs.services import JobService
from keel.ids import Snowflake
from tests.service.conftest import make_settings

RUNS: list[int] = []


async def _counted(payload: dict[str, Any], ctx: Any) -> dict[str, int]:
    RUNS.append(ctx.job_id)
    await asyncio.sleep(0)
    return {"n": payload["n"]}


register(JobKind("test.batched", None, _counted))


async def test_concurrent_duplicate_deliveries_run_each_job_once(pg_env: dict[str, str]) -> None:
    settings = make_settings(pg_env)
    engine = sqlalchemy_config(settings).get_engine()
    acks: list[int] = []

    async def enqueue(job_id: int, queue: str) -> None:
        return None

    try:
        service = JobService(
            engine, Snowflake(5, epoch_ms=settings.worker.ids_epoch_ms), enqueue, max_attempts=3
        )
        ids = [int((await service.create("test.batched", {"n": n})).id) for n in range(60)]
        runner = JobRunner(settings, engine, None, "batch-worker", enqueue)

        def ack_for(job_id: int) -> Any:
            async def ack() -> None:
                acks.append(job_id)

            return ack

        # Every job delivered twice, all at once: the batches see duplicates.
        deliveries = [job_id for job_id in ids for _ in range(2)]
        outcomes = await asyncio.gather(*(runner.execute(j, ack_for(j)) for j in deliveries))
        assert outcomes.count("succeeded") == len(ids)
        assert sorted(RUNS) == sorted(ids)
        for job_id in ids:
            job = await service.get(job_id)
            assert job.status == "succeeded"
            assert job.attempts == 1
            assert job.result == {"n": job.payload["n"]}
    finally:
        await engine.dispose()
