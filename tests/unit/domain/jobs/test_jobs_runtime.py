"""Job kinds, retries and the runner's delivery rules, on a real SQLite database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.support import REPO, no_secrets

from keel.config import Settings, load
from keel.db.engine import sqlalchemy_config
from keel.db.migrate import migrate
from keel.domain.jobs.kinds import (
    InvalidPayloadError,
    JobKind,
    UnknownKindError,
    checksum_bytes,
    get_kind,
    register,
)
from keel.domain.jobs.limits import JobLimits, TooManyActiveJobsError
from keel.domain.jobs.retry import retry_delay
from keel.domain.jobs.runner import JobRunner
from keel.domain.jobs.services import JobService
from keel.domain.jobs.transitions import Claim, JobTransitions
from keel.ids import Snowflake
from keel.tasks.commands import WORKER_BROKER, taskiq_worker_args


def _settings(tmp_path: Path, **env: str) -> Settings:
    return load(
        "local",
        root=REPO,
        environ={"DB_DATABASE": str(tmp_path / "jobs.db"), "JOB_RETRY_BACKOFF": "0.01", **env},
        secrets_reader=no_secrets,
    )


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    settings = _settings(tmp_path)
    await migrate(settings)
    engine = sqlalchemy_config(settings).get_engine()
    yield engine
    await engine.dispose()


def test_payloads_are_validated_per_kind() -> None:
    with pytest.raises(UnknownKindError, match="known: checksum, echo"):
        get_kind("nope")
    with pytest.raises(InvalidPayloadError, match=r"\$.seconds"):
        get_kind("sleep").parse({"seconds": -1})
    with pytest.raises(InvalidPayloadError):
        get_kind("checksum").parse({"mebibytes": 1, "extra": True})
    assert get_kind("echo").parse({"anything": [1]}) == {"anything": [1]}
    assert get_kind("gpu.probe").queue == "gpu"


def test_checksum_is_deterministic() -> None:
    assert checksum_bytes(2) == checksum_bytes(2)
    assert checksum_bytes(1) != checksum_bytes(2)
    assert len(checksum_bytes(1)) == 64


def test_retry_delay_grows_and_is_capped() -> None:
    delays = [retry_delay(attempt, 1.0, 8.0) for attempt in range(1, 7)]
    assert 0.5 <= delays[0] <= 1.0
    assert 2.0 <= delays[2] <= 4.0
    assert all(d <= 8.0 for d in delays)


def test_worker_args_come_from_settings_and_pass_extra_taskiq_arguments(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, WORKER_PROCESSES="3", WORKER_MAX_ASYNC_TASKS="7", WORKER_SHUTDOWN_TIMEOUT="12"
    )
    plain = taskiq_worker_args(settings, [])
    assert (plain.broker, plain.modules) == (WORKER_BROKER, [])
    assert (plain.workers, plain.max_async_tasks, plain.wait_tasks_timeout) == (3, 7, 12)
    assert plain.configure_logging is False
    extra = taskiq_worker_args(
        settings, ["--", "my.tasks", "--max-prefetch", "4", "--workers", "5"]
    )
    assert extra.modules == ["my.tasks"]
    assert extra.max_prefetch == 4
    assert extra.workers == 5  # an option given to Taskiq wins, as on its own command line
    assert extra.max_async_tasks == 7


class _Runtime:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.sent: list[tuple[int, str]] = []
        self.service = JobService(
            engine,
            Snowflake(1, epoch_ms=settings.worker.ids_epoch_ms),
            self.enqueue,
            max_attempts=3,
        )
        self.runner = JobRunner(settings, engine, None, "w1", self.enqueue)
        self.acks = 0

    async def enqueue(self, job_id: int, queue: str) -> None:
        self.sent.append((job_id, queue))

    async def ack(self) -> None:
        self.acks += 1


async def test_redelivered_terminal_job_is_acked_without_running(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    runtime = _Runtime(engine, _settings(tmp_path))
    accepted = await runtime.service.create("echo", {"x": 1})
    job_id = int(accepted.id)
    assert await runtime.runner.execute(job_id, runtime.ack) == "succeeded"
    assert await runtime.runner.execute(job_id, runtime.ack) == "terminal"
    assert runtime.acks == 2
    job = await runtime.service.get(job_id)
    assert job.attempts == 1
    assert job.result == {"x": 1}


async def test_running_job_of_a_live_owner_stays_pending(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    runtime = _Runtime(engine, _settings(tmp_path))
    job_id = int((await runtime.service.create("echo", {})).id)
    claim = await JobTransitions(engine).claim(job_id, "w1")
    assert claim.outcome is Claim.CLAIMED
    # The same worker (alive) holds it: a duplicate delivery is left unacknowledged.
    outcome = await runtime.runner.execute(job_id, runtime.ack)
    assert outcome == "running on w1"
    assert runtime.acks == 0


async def test_retryable_errors_retry_then_fail_with_the_error(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    runtime = _Runtime(engine, _settings(tmp_path))
    job_id = int((await runtime.service.create("sleep", {"seconds": 0, "fail_attempts": 9})).id)
    outcomes = [await runtime.runner.execute(job_id, runtime.ack) for _ in range(3)]
    assert outcomes == ["retrying", "retrying", "failed"]
    assert [sent for sent in runtime.sent if sent[0] == job_id] == [(job_id, "default")] * 3
    job = await runtime.service.get(job_id)
    assert job.status == "failed"
    assert "planned failure on attempt 3 (after 3 attempts)" in (job.error or "")


async def test_effects_commit_with_success_only_once(engine: AsyncEngine, tmp_path: Path) -> None:
    from sqlalchemy import text

    calls: list[int] = []

    async def effect_kind(payload: dict[str, Any], ctx: Any) -> str:
        async def effect(conn: Any) -> None:
            calls.append(ctx.job_id)
            await conn.execute(text("SELECT 1"))

        ctx.on_commit(effect)
        return "ok"

    register(JobKind("unit.effect", None, effect_kind))
    runtime = _Runtime(engine, _settings(tmp_path))
    job_id = int((await runtime.service.create("unit.effect", {})).id)
    results = await asyncio.gather(*(runtime.runner.execute(job_id, runtime.ack) for _ in range(3)))
    assert sorted(results).count("succeeded") == 1
    assert calls == [job_id]


def test_schemas_encode_ids_as_strings() -> None:
    from keel.domain.jobs.schemas import JobAccepted

    body = msgspec.json.decode(
        msgspec.json.encode(JobAccepted(id="1", status="queued", queue="default"))
    )
    assert body["id"] == "1"


async def test_outcome_that_cannot_be_stored_fails_the_job(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    from sqlalchemy.exc import IntegrityError

    async def bad_effect_kind(payload: dict[str, Any], ctx: Any) -> str:
        async def effect(conn: Any) -> None:
            raise IntegrityError("INSERT ...", {}, Exception("duplicate key"))

        ctx.on_commit(effect)
        return "ok"

    register(JobKind("unit.bad_effect", None, bad_effect_kind))
    runtime = _Runtime(engine, _settings(tmp_path))
    job_id = int((await runtime.service.create("unit.bad_effect", {})).id)
    assert await runtime.runner.execute(job_id, runtime.ack) == "failed"
    assert runtime.acks == 1
    job = await runtime.service.get(job_id)
    assert job.status == "failed"
    assert "storing the outcome failed: IntegrityError" in (job.error or "")


async def test_active_job_limit_counts_only_active_jobs(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """The admission count (Core statement; PostgreSQL runs its asyncpg twin, covered by
    tests/service/auth/test_job_ownership.py): queued and running count, finished do not."""
    settings = _settings(tmp_path)
    limits = JobLimits(max_active_per_owner=2, max_sleep_seconds=1, max_checksum_mebibytes=1)
    runtime = _Runtime(engine, settings)
    first = int((await runtime.service.create("echo", {}, owner="user:1")).id)
    await limits(engine, "echo", {}, "user:1")  # 1 active < 2
    await runtime.service.create("echo", {}, owner="user:1", admission=limits)
    with pytest.raises(TooManyActiveJobsError, match="JOB_MAX_ACTIVE_PER_OWNER"):
        await limits(engine, "echo", {}, "user:1")
    await limits(engine, "echo", {}, "user:2")  # another owner's count is its own
    assert await runtime.runner.execute(first, runtime.ack) == "succeeded"
    await limits(engine, "echo", {}, "user:1")  # a finished job no longer counts
