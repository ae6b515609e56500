"""Running one delivered job: claim the row, run the kind, store the outcome, then ack.

The message is acknowledged only after the outcome is stored, so a worker killed at any point
leaves its message pending; another worker reclaims it after ``WORKER_IDLE_TIMEOUT`` and the
row decides what happens:

- terminal (succeeded/failed/cancelled): a redelivery, acked without running again;
- running, owner's heartbeat alive: the owner is still working, left pending (checked again);
- running, owner's heartbeat gone: taken over (a new attempt);
- queued: claimed with one conditional UPDATE, run, outcome stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec
from loguru import logger
from redis.asyncio import Redis
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.batching import Batcher
from keel.config import Settings
from keel.domain.jobs.kinds import (
    InvalidPayloadError,
    JobContext,
    JobFailedError,
    UnknownKindError,
    get_kind,
)
from keel.domain.jobs.retry import RETRYABLE, STORE_ATTEMPTS, retry_delay, store_delay, transient
from keel.domain.jobs.transitions import Claim, ClaimResult, JobTransitions
from keel.heartbeats import is_alive
from keel.metrics import hooks as metrics
from keel.resilience import describe_exception
from keel.runtime import Enqueue

Ack = Callable[[], Awaitable[None]]
T = TypeVar("T")


def _error_text(exc: BaseException) -> str:
    return describe_exception(exc, whole=True)


class JobRunner:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        redis: Redis | None,
        worker_id: str,
        enqueue: Enqueue,
    ) -> None:
        self.settings = settings
        self.transitions = JobTransitions(engine)
        self.redis = redis
        self.worker_id = worker_id
        self.enqueue = enqueue
        self.in_flight = 0
        # PostgreSQL: concurrent claims and successes share round trips (group commit).
        self._claims: Batcher[int, Any] | None = None
        self._successes: Batcher[tuple[int, Any], bool] | None = None
        if self.transitions.batches:
            self._claims = Batcher(self._claim_batch)
            self._successes = Batcher(self._succeed_batch)

    async def _claim_batch(self, job_ids: Sequence[int]) -> list[Any]:
        return await self.transitions.claim_many(job_ids, self.worker_id)

    async def _succeed_batch(self, outcomes: Sequence[tuple[int, Any]]) -> list[bool]:
        return await self.transitions.succeed_many(outcomes, self.worker_id)

    async def execute(self, job_id: int, ack: Ack | None) -> str:
        """Handle one delivery of ``job_id``; returns what happened (for logs and results)."""
        self.in_flight += 1
        try:
            outcome, should_ack = await self._execute(job_id)
        finally:
            self.in_flight -= 1
        if should_ack and ack is not None:
            await ack()
        return outcome

    async def _claim(self, job_id: int) -> ClaimResult:
        if self._claims is not None:
            row = await self._claims.submit(job_id)
            if row is not None:
                return ClaimResult(Claim.CLAIMED, job=row)
        cap = max(1.0, self.settings.worker.idle_timeout / 2)
        while True:
            claim = await self.transitions.claim(job_id, self.worker_id)
            if claim.outcome is not Claim.NOT_YET:
                return claim
            # A retry's backoff: its message came early (or was redelivered). Wait it out.
            await asyncio.sleep(min(claim.wait_s, cap) + 0.01)

    async def _owner_alive(self, owner: str | None) -> bool:
        if owner is None or self.redis is None:
            return owner == self.worker_id
        if owner == self.worker_id:
            return True
        return await is_alive(self.redis, self.settings, owner)

    async def _execute(self, job_id: int) -> tuple[str, bool]:
        claim = await self._store(lambda: self._claim(job_id))
        if claim.outcome is Claim.RUNNING:
            if await self._owner_alive(claim.owner):
                # Still being worked on: keep this delivery pending, it is checked again later.
                return f"running on {claim.owner}", False
            claim = await self.transitions.take_over(job_id, claim.owner, self.worker_id)
            if claim.outcome is Claim.CLAIMED:
                metrics.job_reclaimed(claim.job)
        if claim.outcome is not Claim.CLAIMED:
            if claim.outcome is Claim.RUNNING:
                return f"running on {claim.owner}", False
            return claim.outcome.value, True
        return await metrics.observe_job(claim.job, self._run), True

    async def _fail(self, job_id: int, error: str) -> str:
        await self._store(lambda: self.transitions.fail(job_id, self.worker_id, error))
        return "failed"

    async def _run(self, row: Any) -> str:
        job_id: int = row.id
        attempt: int = row.attempts
        if attempt > row.max_attempts:
            return await self._fail(
                job_id, f"gave up after {row.max_attempts} attempts (last worker lost mid-run)"
            )
        ctx = JobContext(
            job_id=job_id, attempt=attempt, worker_id=self.worker_id, settings=self.settings
        )
        try:
            kind = get_kind(row.kind)
            payload = kind.parse(row.payload)
            result = msgspec.to_builtins(await kind.run(payload, ctx))
        except (UnknownKindError, InvalidPayloadError, JobFailedError) as exc:
            return await self._fail(job_id, str(exc))
        except RETRYABLE as exc:
            return await self._retry_or_fail(row, _error_text(exc))
        except asyncio.CancelledError:
            raise  # hard shutdown: not acked, another worker reclaims it
        except Exception as exc:  # noqa: BLE001 - a bug in a kind fails that job, not the worker
            logger.opt(exception=exc).warning("job {} ({}) raised", job_id, row.kind)
            return await self._fail(job_id, _error_text(exc))
        effects = list(ctx.effects)
        successes = self._successes
        try:
            if successes is not None and not effects:
                stored = await self._store(lambda: successes.submit((job_id, result)))
            else:
                stored = await self._store(
                    lambda: self.transitions.succeed(job_id, self.worker_id, result, effects)
                )
        except DBAPIError as exc:
            if transient(exc):
                raise  # still down: stays pending, delivered again later
            # The result or an effect cannot be stored (a constraint, a bad value): say so.
            return await self._fail(job_id, f"storing the outcome failed: {_error_text(exc)}")
        return "succeeded" if stored else "superseded"

    async def _retry_or_fail(self, row: Any, error: str) -> str:
        job_id: int = row.id
        if row.attempts >= row.max_attempts:
            return await self._fail(job_id, f"{error} (after {row.attempts} attempts)")
        worker = self.settings.worker
        delay = retry_delay(row.attempts, worker.retry_backoff, worker.retry_backoff_max)
        stored = await self._store(
            lambda: self.transitions.retry_later(job_id, self.worker_id, error, delay)
        )
        if stored:
            # A new message for the next attempt; this one is acked by the caller. If we die
            # before the kick, this message is reclaimed and the queued row is claimed again.
            await self.enqueue(job_id, row.queue)
        logger.info(
            "job {} attempt {} failed ({}); retry in {:.1f}s", job_id, row.attempts, error, delay
        )
        return "retrying"

    async def _store(self, write: Callable[[], Awaitable[T]]) -> T:
        """Run a database step, riding out a short outage or a restart (the pool replaces the
        dead connections). Still failing after the retries: raise, so the message stays
        unacknowledged and is delivered again later.
        """
        for attempt in range(1, STORE_ATTEMPTS + 1):
            try:
                return await write()
            except (DBAPIError, OSError) as exc:
                if attempt == STORE_ATTEMPTS or not transient(exc):
                    raise
                delay = store_delay(attempt)
                logger.warning(
                    "database step failed ({}); retry in {:.1f}s", _error_text(exc), delay
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")
