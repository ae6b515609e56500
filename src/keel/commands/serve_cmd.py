"""``keel serve`` and ``keel healthcheck api``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from keel.cli_parsers import healthcheck_targets
from keel.config import ENVIRONMENTS, Settings, load
from keel.config.show import render_table
from keel.health_probe import mark_ready, probe, summarise, was_ready

# Exit status of `keel serve` when its address cannot be bound (keel.app: 3 = startup failed).
PORT_UNAVAILABLE_EXIT = 3


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser("serve", help="run the API under Granian")
    serve.add_argument(
        "--env", choices=ENVIRONMENTS, help="environment (default: $APP_ENV or local)"
    )
    serve.add_argument("--host", help="bind address (default: HTTP_HOST)")
    serve.add_argument("--port", type=int, help="port (default: HTTP_PORT, 8000)")
    serve.add_argument(
        "--migrate",
        action="store_true",
        help="upgrade the database schema first, in this process (make run, make dev)",
    )
    serve.set_defaults(handler=run_serve)

    api = healthcheck_targets(subparsers).add_parser(
        "api", help="GET /health/ready (or --live) of the API"
    )
    api.add_argument("--url", help="full URL (default: http://127.0.0.1:$HTTP_PORT/health/ready)")
    api.add_argument("--live", action="store_true", help="check /health/live instead of ready")
    api.add_argument("--timeout", type=float, default=3.0)
    api.add_argument(
        "--ready-once",
        action="store_true",
        help="readiness until it passed once in this container, then liveness (Swarm)",
    )
    api.set_defaults(handler=run_healthcheck_api)


def run_serve(args: argparse.Namespace) -> int:
    from keel.metrics import multiproc

    # First: prometheus_client decides its multiprocess mode when it is first imported.
    multiproc.prepare("api")
    # Granian workers load settings themselves (factory): hand them the choices via the env.
    if args.env:
        os.environ["APP_ENV"] = args.env
    if args.host:
        os.environ["HTTP_HOST"] = args.host
    if args.port:
        os.environ["HTTP_PORT"] = str(args.port)
    settings = load()
    from keel.app import api_runtime
    from keel.listen_check import listen_problem

    # Before anything slow: a port in use is one line, not a Granian traceback.
    problem = listen_problem(settings.http.host, settings.http.port)
    if problem is not None:
        print(problem, file=sys.stderr)
        return PORT_UNAVAILABLE_EXIT
    from keel.components import build_components

    # Pre-flight in the main process: a component that refuses its settings (a bad JWT key,
    # say) fails here with the config report, not inside every Granian worker.
    build_components(api_runtime(settings))
    from keel.app import STARTUP_FAILED_EXIT
    from keel.logging import configure_logging, use_json
    from keel.server import serve

    configure_logging(settings, process="api")
    if args.migrate and not _migrate(settings):
        return 1
    if settings.app.echo_config:
        from loguru import logger

        from keel.config import load_with_sources

        logger.bind(lifecycle=True).info(
            "effective configuration:\n{}", render_table(load_with_sources())
        )
    from keel.metrics import exporter

    metrics = exporter.start(settings, "api")
    failure = serve(settings)
    if metrics is not None:
        metrics.stop()
    if failure:
        # The worker logged it; repeat it as the last plain line only when that log line was
        # JSON (containers), not when the terminal already shows it in plain text.
        if use_json(settings.log.format, sys.stdout):
            print(failure, file=sys.stderr)
        return STARTUP_FAILED_EXIT
    return 0


def _migrate(settings: Settings) -> bool:
    """``keel migrate`` in this process: one interpreter start less for ``make run``."""
    import asyncio

    from loguru import logger

    from keel.db.errors import DatabaseConnectError
    from keel.db.migrate import MigrationLockTimeoutError, migrate
    from keel.db.url import DatabaseUrlError

    try:
        outcome = asyncio.run(migrate(settings))
    except (DatabaseConnectError, DatabaseUrlError, MigrationLockTimeoutError) as exc:
        logger.bind(lifecycle=True).error("migrate failed: {}", exc)
        return False
    logger.bind(lifecycle=True).info("migrate: {}", outcome.describe())
    return True


def run_healthcheck_api(args: argparse.Namespace) -> int:
    url = args.url
    live = args.live or (args.ready_once and was_ready("api"))
    if url is None:
        # Only the port matters here; avoid a full settings load (and secrets) per probe.
        port = os.environ.get("HTTP_PORT", "8000")
        url = f"http://127.0.0.1:{port}/health/{'live' if live else 'ready'}"
    ok, detail = probe(url, timeout=args.timeout)
    if ok and args.ready_once and not live:
        mark_ready("api")
    print(f"{'healthy' if ok else 'unhealthy'}: {url}: {summarise(detail) if not ok else 'ok'}")
    return 0 if ok else 1
