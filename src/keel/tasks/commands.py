"""``keel worker`` (Taskiq worker processes) and ``keel healthcheck worker``."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from typing import Any

import msgspec

from keel.config import ENVIRONMENTS, Settings, load
from keel.domain.jobs.kinds import QUEUES


def _queues(text: str) -> list[str]:
    queues = [q.strip() for q in text.split(",") if q.strip()]
    unknown = sorted(set(queues) - set(QUEUES))
    if not queues or unknown:
        raise argparse.ArgumentTypeError(
            f"queues must be a comma-separated subset of {','.join(QUEUES)}"
            + (f"; unknown: {','.join(unknown)}" if unknown else "")
        )
    return queues


def _healthcheck_subparsers(subparsers: Any) -> Any:
    """The ``healthcheck`` command's TARGET subparsers (created by ``keel serve``'s module)."""
    health = subparsers.choices.get("healthcheck")
    if health is None:
        health = subparsers.add_parser("healthcheck", help="exit 0 when a process is healthy")
        return health.add_subparsers(dest="target", metavar="TARGET", required=True)
    for action in health._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return health.add_subparsers(dest="target", metavar="TARGET", required=True)


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

    check = _healthcheck_subparsers(subparsers).add_parser(
        "worker", help="a fresh heartbeat of a worker on this host in Redis"
    )
    check.add_argument("--env", choices=ENVIRONMENTS, help="environment (default: $APP_ENV)")
    check.add_argument("--worker-id", help="this exact worker (default: any on this host)")
    check.set_defaults(handler=run_healthcheck_worker)


def worker_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    changes: dict[str, Any] = {}
    if args.queues:
        changes["queues"] = args.queues
    if args.workers:
        changes["processes"] = args.workers
    if args.max_async_tasks:
        changes["max_async_tasks"] = args.max_async_tasks
    worker = msgspec.structs.replace(settings.worker, **changes)
    return msgspec.structs.replace(settings, worker=worker)


def taskiq_argv(settings: Settings, extra: list[str]) -> list[str]:
    worker = settings.worker
    if extra and extra[0] == "--":
        extra = extra[1:]
    # Options first, then the broker: extra positionals right after it are task modules.
    return [
        "--workers",
        str(worker.processes),
        "--max-async-tasks",
        str(worker.max_async_tasks),
        # In-flight jobs get the shutdown budget after SIGTERM; then the broker closes.
        "--wait-tasks-timeout",
        str(worker.shutdown_timeout),
        "--shutdown-timeout",
        "5",
        "--no-configure-logging",
        "keel.tasks.worker:worker_broker",
        *extra,
    ]


def run_worker(args: argparse.Namespace) -> int:
    from keel.metrics import multiproc

    # First: prometheus_client decides its multiprocess mode when it is first imported.
    multiproc.prepare("worker")
    settings = worker_settings(load(args.env), args)
    from loguru import logger
    from taskiq.cli.worker.args import WorkerArgs
    from taskiq.cli.worker.run import run_worker as taskiq_run_worker

    from keel.logging import configure_logging
    from keel.tasks.worker import set_settings

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
    set_settings(settings)
    worker_args = WorkerArgs.from_cli(taskiq_argv(settings, list(args.taskiq_args or [])))
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


async def _check(settings: Settings, worker_id: str | None) -> tuple[bool, str]:
    from keel.redis_conn import make_client, redis_where
    from keel.tasks.heartbeat import read_heartbeats

    client = make_client(settings)
    try:
        match = worker_id or f"{socket.gethostname()}.*"
        beats = await read_heartbeats(client, settings, match)
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return False, f"cannot read heartbeats from Redis at {redis_where(settings)}: {exc}"
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
    ok, detail = asyncio.run(_check(settings, args.worker_id))
    print(f"{'healthy' if ok else 'unhealthy'}: {detail}")
    return 0 if ok else 1
