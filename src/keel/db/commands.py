"""``keel migrate``: one-shot, locked upgrade to head (a no-op at head)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from keel.config import ENVIRONMENTS, load


def register(subparsers: Any) -> None:
    migrate = subparsers.add_parser(
        "migrate", help="upgrade the database to the latest schema (safe to run concurrently)"
    )
    migrate.add_argument("--env", choices=ENVIRONMENTS, help="environment (default: $APP_ENV)")
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    migrate.set_defaults(handler=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    settings = load(args.env)
    from loguru import logger

    from keel.db.errors import DatabaseConnectError
    from keel.db.migrate import MigrationLockTimeoutError, migrate
    from keel.db.url import DatabaseUrlError, database_target
    from keel.logging import configure_logging, use_json

    configure_logging(settings, process="migrate")
    try:
        target = database_target(settings)
        outcome = asyncio.run(migrate(settings, args.revision))
    except (DatabaseConnectError, DatabaseUrlError, MigrationLockTimeoutError) as exc:
        logger.error("migrate failed: {}", exc)
        if use_json(settings.log.format, sys.stdout):  # else the terminal shows it already
            print(f"migrate failed: {exc}", file=sys.stderr)
        return 1
    waited = f" (waited {outcome.waited_s:.1f}s for the lock)" if outcome.waited_s >= 0.5 else ""
    logger.bind(lifecycle=True).info(
        "migrate {}: {}{}", target.describe(), outcome.describe(), waited
    )
    return 0
