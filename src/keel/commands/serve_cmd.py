"""``keel serve`` and ``keel healthcheck api``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from keel.config import ENVIRONMENTS, load
from keel.config.show import render_table
from keel.health_probe import probe, summarise


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser("serve", help="run the API under Granian")
    serve.add_argument(
        "--env", choices=ENVIRONMENTS, help="environment (default: $APP_ENV or local)"
    )
    serve.add_argument("--host", help="bind address (default: HTTP_HOST)")
    serve.add_argument("--port", type=int, help="port (default: HTTP_PORT, 8000)")
    serve.set_defaults(handler=run_serve)

    health = subparsers.add_parser("healthcheck", help="exit 0 when a process is healthy, else 1")
    health_sub = health.add_subparsers(dest="target", metavar="TARGET", required=True)
    api = health_sub.add_parser("api", help="GET /health/ready (or --live) of the API")
    api.add_argument("--url", help="full URL (default: http://127.0.0.1:$HTTP_PORT/health/ready)")
    api.add_argument("--live", action="store_true", help="check /health/live instead of ready")
    api.add_argument("--timeout", type=float, default=3.0)
    api.set_defaults(handler=run_healthcheck_api)


def run_serve(args: argparse.Namespace) -> int:
    # Granian workers load settings themselves (factory): hand them the choices via the env.
    if args.env:
        os.environ["APP_ENV"] = args.env
    if args.host:
        os.environ["HTTP_HOST"] = args.host
    if args.port:
        os.environ["HTTP_PORT"] = str(args.port)
    settings = load()
    from keel.components import build_components

    # Pre-flight in the main process: a component that refuses its settings (a bad JWT key,
    # say) fails here with the config report, not inside every Granian worker.
    build_components(settings)
    from keel.app import STARTUP_FAILED_EXIT
    from keel.logging import configure_logging
    from keel.server import PortInUseError, check_port_free, serve

    configure_logging(settings, process="api")
    if settings.app.echo_config:
        from loguru import logger

        from keel.config import load_with_sources

        logger.bind(lifecycle=True).info(
            "effective configuration:\n{}", render_table(load_with_sources())
        )
    try:
        check_port_free(settings.http.host, settings.http.port)
    except PortInUseError as exc:
        print(exc, file=sys.stderr)
        return STARTUP_FAILED_EXIT
    failure = serve(settings)
    if failure:
        # The worker already logged it; this is the last line an operator sees.
        print(failure, file=sys.stderr)
        return STARTUP_FAILED_EXIT
    return 0


def run_healthcheck_api(args: argparse.Namespace) -> int:
    url = args.url
    if url is None:
        # Only the port matters here; avoid a full settings load (and secrets) per probe.
        port = os.environ.get("HTTP_PORT", "8000")
        url = f"http://127.0.0.1:{port}/health/{'live' if args.live else 'ready'}"
    ok, detail = probe(url, timeout=args.timeout)
    print(f"{'healthy' if ok else 'unhealthy'}: {url}: {summarise(detail) if not ok else 'ok'}")
    return 0 if ok else 1
