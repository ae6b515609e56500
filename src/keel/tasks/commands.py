"""``keel worker`` (Taskiq worker processes) and ``keel healthcheck worker``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import socket
import sys
from typing import TYPE_CHECKING, Any

from keel.cli_parsers import healthcheck_targets
from keel.config import ENVIRONMENTS, Settings, load
from keel.domain.jobs.kinds import QUEUES

if TYPE_CHECKING:
    # Imported where used: `keel healthcheck worker` (this module) must start fast.
    from taskiq.cli.worker.args import WorkerArgs

# What each Taskiq worker process imports to get its broker (it loads settings from the env).
WORKER_BROKER = "keel.tasks.worker:worker_broker"

# `keel healthcheck worker` gives Redis this long; container probes allow 5 s (Compose) or
# 10 s (Kubernetes) for the whole command, settings and decryption included.
HEARTBEAT_READ_TIMEOUT_S = 3.0


def _queues(text: str) -> list[str]:
    queues = [q.strip() for q in text.split(",") if q.strip()]
    unknown = sorted(set(queues) - set(QUEUES))
    if not queues or unknown:
        raise argparse.ArgumentTypeError(
            f"queues must be a comma-separated subset of {','.join(QUEUES)}"
            + (f"; unknown: {','.join(unknown)}" if unknown else "")
        )
    return queues


def register(subparsers: Any) -> None:
    worker = subparsers.add_parser(
        "worker",
        help="run Taskiq worker processes for the job queues",
        description="Extra arguments after the options go to the Taskiq worker unchanged "
        "(e.g. `keel worker --queues default -- --max-prefetch 10`).",
    )
    worker.add_argument("--env", choices=ENVIRONMENTS, help="environment (default: $APP_ENV)")
    worker.add_argument("--queues", type=_queues, help="e.g. default,gpu (default: WORKER_QUEUES)")
    worker.add_argument("--workers", type=int, help="processes (default: WORKER_PROCESSES)")
    worker.add_argument(
        "--max-async-tasks", type=int, help="concurrent jobs per process (WORKER_MAX_ASYNC_TASKS)"
    )
    worker.add_argument("taskiq_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    worker.set_defaults(handler=run_worker)

    check = healthcheck_targets(subparsers).add_parser(
        "worker", help="a fresh heartbeat of a worker on this host in Redis"
    )
    check.add_argument("--env", choices=ENVIRONMENTS, help="environment (default: $APP_ENV)")
    check.add_argument("--worker-id", help="this exact worker (default: any on this host)")
    check.add_argument(
        "--live",
        action="store_true",
        help="liveness: fail only when Redis answers and this worker's heartbeat is gone "
        "(an unreachable Redis is not the worker's fault and passes)",
    )
    check.add_argument(
        "--ready-once",
        action="store_true",
        help="once healthy in this container, Redis being unreachable no longer counts (Swarm)",
    )
    check.set_defaults(handler=run_healthcheck_worker)


def _hand_to_processes(args: argparse.Namespace) -> None:
    """The command line's choices, for the worker processes: through the environment only
    (as ``keel serve`` does), so spawned processes (macOS) get them as forked ones do."""
    if args.env:
        os.environ["APP_ENV"] = args.env
    if args.queues:
        os.environ["WORKER_QUEUES"] = ",".join(args.queues)
    if args.workers:
        os.environ["WORKER_PROCESSES"] = str(args.workers)
    if args.max_async_tasks:
        os.environ["WORKER_MAX_ASYNC_TASKS"] = str(args.max_async_tasks)


def taskiq_worker_args(settings: Settings, extra: list[str]) -> WorkerArgs:
    """Taskiq's ``WorkerArgs`` from the settings; ``extra`` (after ``--``) is Taskiq's own
    command line: an option given there wins, positionals are task modules."""
    from taskiq.cli.worker.args import WorkerArgs

    worker = settings.worker
    args = WorkerArgs(
        broker=WORKER_BROKER,
        modules=[],
        workers=worker.processes,
        max_async_tasks=worker.max_async_tasks,
        # In-flight jobs get the shutdown budget after SIGTERM; then the broker closes.
        wait_tasks_timeout=worker.shutdown_timeout,
        shutdown_timeout=5,
        configure_logging=False,
    )
    if extra and extra[0] == "--":
        extra = extra[1:]
    if not extra:
        return args
    defaults = WorkerArgs.from_cli([WORKER_BROKER])
    given = WorkerArgs.from_cli([WORKER_BROKER, *extra])
    changed = {
        f.name: getattr(given, f.name)
        for f in dataclasses.fields(WorkerArgs)
        if getattr(given, f.name) != getattr(defaults, f.name)
    }
    return dataclasses.replace(args, **changed)


def run_worker(args: argparse.Namespace) -> int:
    from keel.metrics import multiproc

    # First: prometheus_client decides its multiprocess mode when it is first imported.
    multiproc.prepare("worker")
    _hand_to_processes(args)
    settings = load()
    from loguru import logger
    from taskiq.cli.worker.run import run_worker as taskiq_run_worker

    from keel.logging import configure_logging

    if settings.redis.backend == "memory":
        print(
            "keel worker needs REDIS_BACKEND=redis (with memory, the API runs jobs itself)",
            file=sys.stderr,
        )
        return 2
    if "gpu" in settings.worker.queues and not settings.worker.allow_gpu_queue_without_gpu:
        from keel.gpu import NO_GPU_MESSAGE, has_gpu

        if not has_gpu(settings):
            print(
                f"refusing to consume the gpu queue: {NO_GPU_MESSAGE} "
                "(set WORKER_ALLOW_GPU_QUEUE_WITHOUT_GPU=true to override)",
                file=sys.stderr,
            )
            return 2
    configure_logging(settings, process="worker")
    worker_args = taskiq_worker_args(settings, list(args.taskiq_args or []))
    logger.bind(lifecycle=True).info(
        "keel worker: queues={} processes={} max_async_tasks={}",
        ",".join(settings.worker.queues),
        settings.worker.processes,
        settings.worker.max_async_tasks,
    )
    from keel.metrics import exporter

    metrics = exporter.start(settings, "worker")
    status = taskiq_run_worker(worker_args)
    if metrics is not None:
        metrics.stop()
    return int(status or 0)


async def _check(settings: Settings, worker_id: str | None, live: bool) -> tuple[bool, str]:
    """Readiness (``live=False``): Redis answers and this worker's heartbeat is fresh. Liveness
    (``live=True``, also after a ``--ready-once`` container has been ready): only a missing
    heartbeat on an answering Redis fails; an outage is Redis's and restarts nothing."""
    from keel.heartbeats import read_heartbeats
    from keel.redis_conn import make_client, redis_where

    client = make_client(settings)
    try:
        match = worker_id or f"{socket.gethostname()}.*"
        # Bounded below the probe's own timeout (a hung Redis would hold the read for 10 s):
        # a probe killed by its runner counts as a failure, and in live mode it must not.
        beats = await asyncio.wait_for(
            read_heartbeats(client, settings, match), timeout=HEARTBEAT_READ_TIMEOUT_S
        )
    except TimeoutError:
        where = f"Redis at {redis_where(settings)}"
        if live:
            return True, f"liveness not judged: {where} did not answer in time"
        return False, f"{where} did not answer within {HEARTBEAT_READ_TIMEOUT_S:g}s"
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy (or, live: unknown)
        where = f"Redis at {redis_where(settings)}"
        if live:
            # Restarting the worker would not bring Redis back; readiness reports the outage.
            return True, f"liveness not judged: cannot reach {where}: {exc}"
        return False, f"cannot read heartbeats from {where}: {exc}"
    finally:
        await client.aclose()
    if not beats:
        who = worker_id or f"any worker on host {socket.gethostname()}"
        return False, f"no fresh heartbeat for {who}"
    summary = ", ".join(
        f"{b.worker_id} (queues {','.join(b.queues)}, in flight {b.in_flight})" for b in beats
    )
    return True, summary


def run_healthcheck_worker(args: argparse.Namespace) -> int:
    settings = load(args.env)
    if settings.redis.backend == "memory":
        print("healthy: REDIS_BACKEND=memory runs jobs in the API process")
        return 0
    from keel.health_probe import mark_ready, was_ready

    # --ready-once (Swarm): readiness until it passed once in this container, then liveness.
    ready_before = args.ready_once and was_ready("worker")
    ok, detail = asyncio.run(_check(settings, args.worker_id, args.live or ready_before))
    if ok and args.ready_once and not ready_before:
        mark_ready("worker")
    print(f"{'healthy' if ok else 'unhealthy'}: {detail}")
    return 0 if ok else 1
