"""The one Taskiq task: ``keel.run_job(job_id)``. Every job kind runs through it.

Acknowledgement is manual (the ``ack_type`` label): the runner acks after the outcome is
stored, or leaves the message pending on purpose (see :mod:`keel.domain.jobs.runner`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask, Context, TaskiqDepends

from keel.config import Settings
from keel.tasks.broker import RUN_JOB_TASK, stream_name

RUNNER_STATE_KEY = "keel_runner"


async def run_job(
    job_id: int,
    context: Context = TaskiqDepends(),  # noqa: B008 - Taskiq's injection idiom
) -> dict[str, Any]:
    runner = context.broker.state[RUNNER_STATE_KEY]
    ack = context.ack if context.is_ackable else None
    outcome: str = await runner.execute(job_id, ack)
    return {"job_id": str(job_id), "outcome": outcome}


def register(broker: AsyncBroker) -> AsyncTaskiqDecoratedTask[Any, Any]:
    existing = broker.find_task(RUN_JOB_TASK)
    if existing is not None:
        return existing
    return broker.register_task(run_job, task_name=RUN_JOB_TASK, ack_type="manual")


def make_enqueue(broker: AsyncBroker, settings: Settings) -> Callable[[int, str], Awaitable[None]]:
    """``enqueue(job_id, queue)``: one message on that queue's stream."""
    task = register(broker)
    kickers: dict[str, Any] = {}

    async def enqueue(job_id: int, queue: str) -> None:
        kicker = kickers.get(queue)
        if kicker is None:
            kicker = kickers[queue] = task.kicker().with_labels(
                queue_name=stream_name(settings, queue)
            )
        await kicker.kiq(job_id)

    return enqueue
