"""``keel doctor``: the troubleshooting guide as checks for the environment it runs in."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from keel.config import ENVIRONMENTS

USAGE_EXIT = 2


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def register(subparsers: Any) -> None:
    doctor = subparsers.add_parser(
        "doctor",
        help="check this host's config, secrets, database, Redis, workers (exit 1 on a failure)",
        description="One line per check; a failing check says how to fix it and where the "
        "docs are. Exit 0: nothing failed, 1: something failed, 2: usage error.",
    )
    doctor.add_argument("--env", choices=ENVIRONMENTS, help="environment (default: $APP_ENV)")
    doctor.add_argument("--json", action="store_true", help="machine-readable report")
    doctor.add_argument(
        "--only",
        type=_names,
        action="extend",
        default=[],
        help="check ids or groups, e.g. db,redis",
    )
    doctor.add_argument(
        "--skip", type=_names, action="extend", default=[], help="check ids or groups to leave out"
    )
    doctor.add_argument("--strict", action="store_true", help="warnings fail too")
    doctor.add_argument("--list", action="store_true", help="list the checks and exit")
    doctor.add_argument(
        "--min-free-mb",
        type=int,
        default=512,
        help="free space the log directory needs (default 512 MiB)",
    )
    doctor.set_defaults(handler=run_doctor)


def _fancy() -> bool:
    # Symbols for a person at a terminal; plain words for logs, CI and `docker exec` pipes.
    return (
        sys.stdout.isatty()
        and not os.environ.get("NO_COLOR")
        and ("utf" in (sys.stdout.encoding or "").lower())
    )


def run_doctor(args: argparse.Namespace) -> int:
    from keel.doctor.context import DoctorContext
    from keel.doctor.registry import CHECKS, select
    from keel.doctor.render import exit_code, redactor, render_json, render_text
    from keel.doctor.runner import run_checks

    if args.list:
        for check in CHECKS:
            print(f"{check.id:<20} {check.title}")
        return 0
    checks, unknown = select(args.only, args.skip)
    if unknown:
        known = sorted({c.id for c in CHECKS} | {c.group for c in CHECKS})
        print(
            f"keel doctor: unknown check(s) {', '.join(unknown)}; known: {', '.join(known)}",
            file=sys.stderr,
        )
        return USAGE_EXIT
    if args.min_free_mb < 0:
        print("keel doctor: --min-free-mb must be 0 or more", file=sys.stderr)
        return USAGE_EXIT
    ctx = DoctorContext.create(args.env, os.environ, min_free_mb=args.min_free_mb)
    results = asyncio.run(run_checks(checks, ctx))
    clean = redactor(ctx.secret_values())
    code = exit_code(results, strict=args.strict)
    if args.json:
        print(render_json(results, ctx.env, code, clean=clean))
    else:
        print(render_text(results, ctx.env, fancy=_fancy(), clean=clean))
    return code
