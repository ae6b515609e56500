"""After a restore, with the app's settings: jobs per the at-least-once contract, sessions.

Runs where the app runs (``keel restore aftercare``; in Compose a one-off ``worker`` container),
after the schema is at head and before the workers start.

- Jobs ``running`` at backup time have no live worker and no message any more: they go back to
  ``queued`` (a new attempt, exactly as a takeover from a dead worker), and are reported.
- Every ``queued`` job gets a fresh message now (the restored Redis streams, if any, are not
  trusted): the runner claims each job once, so a duplicate is acked without running. Without
  this the sweeper would still find them, after ``WORKER_REQUEUE_AFTER`` (10 min by default).
- Sessions: the refresh-token and nonce claims and the revocations lived in Redis. A restore
  without Redis (or from Redis older than now) would let spent refresh tokens and logged-out
  tokens work again, so every token issued before the restore is refused from now on (the
  ``sessions-reset-at`` mark in the ``revoked_tokens`` store, read by
  :class:`keel.auth.revocation.Revocations`); users log in again. API keys
  keep working (their nonces only matter within the signature's few-minute clock window).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import text

from keel.config import Settings

# Prefix of the JSON report line `keel restore aftercare --json` prints (amid the logs).
AFTERCARE_MARK = "keel-aftercare-report: "
_REQUEUE_RUNNING = text(
    "UPDATE jobs SET status = 'queued', worker_id = NULL, started_at = NULL "
    "WHERE status = 'running' RETURNING id"
)
_QUEUED = text("SELECT id, queue FROM jobs WHERE status = 'queued' ORDER BY id")


@dataclass(frozen=True)
class AftercareReport:
    requeued_running: tuple[int, ...]
    enqueued: int
    sessions_reset_at: int | None

    def lines(self) -> list[str]:
        out = [
            f"jobs: {len(self.requeued_running)} running at backup time put back to queued"
            + (
                f" ({', '.join(map(str, self.requeued_running[:10]))}"
                f"{' …' if len(self.requeued_running) > 10 else ''})"
                if self.requeued_running
                else ""
            ),
            f"jobs: {self.enqueued} queued job(s) sent to the workers again (each runs once)",
        ]
        if self.sessions_reset_at is not None:
            out.append("sessions: tokens issued before the restore are refused; users log in again")
        return out


async def aftercare(settings: Settings, *, reset_sessions: bool = True) -> AftercareReport:
    from keel.auth.revocation import SESSIONS_RESET_KEY
    from keel.db.engine import sqlalchemy_config
    from keel.domain.jobs.kinds import QUEUES
    from keel.redis_conn import make_client
    from keel.stores import build_store_registry
    from keel.tasks import jobs_task
    from keel.tasks.broker import build_broker

    engine = sqlalchemy_config(settings, one_shot=True).get_engine()
    try:
        async with engine.begin() as conn:
            running = tuple(int(row[0]) for row in await conn.execute(_REQUEUE_RUNNING))
        async with engine.connect() as conn:
            queued = [(int(row[0]), str(row[1])) for row in await conn.execute(_QUEUED)]
    finally:
        await engine.dispose()
    if settings.redis.backend == "memory":
        # No workers and no Redis: the in-process broker of the next `keel serve` has nothing
        # to resend to; the queued jobs wait for a deployment with workers.
        return AftercareReport(running, 0, None)
    broker = build_broker(settings, QUEUES)
    await broker.startup()
    try:
        enqueue = jobs_task.make_enqueue(broker, settings)
        for job_id, queue in queued:
            await enqueue(job_id, queue)
    finally:
        await broker.shutdown()
    reset_at = None
    if reset_sessions:
        reset_at = int(time.time())
        # No expiry: it must outlive every token issued before it (the longest refresh TTL).
        client = make_client(settings)
        try:
            store = build_store_registry(settings.app.name, client).get("revoked_tokens")
            await store.set(SESSIONS_RESET_KEY, str(reset_at).encode())
        finally:
            await client.aclose()
    return AftercareReport(running, len(queued), reset_at)
