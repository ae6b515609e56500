"""``keel config show``: the effective settings with the source of each value."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from keel.config import ENVIRONMENTS, load_with_sources
from keel.config.show import as_dict, render_table


def register(subparsers: Any) -> None:
    config = subparsers.add_parser("config", help="inspect the configuration")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = config_sub.add_parser("show", help="print effective settings and where each came from")
    show.add_argument(
        "--env", choices=ENVIRONMENTS, help="environment (default: $APP_ENV or local)"
    )
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument("--reveal", action="store_true", help="print secret values in clear")
    show.set_defaults(handler=show_config)


def show_config(args: argparse.Namespace) -> int:
    loaded = load_with_sources(args.env)
    if args.json:
        sys.stdout.write(msgspec.json.encode(as_dict(loaded, reveal=args.reveal)).decode() + "\n")
    else:
        print(render_table(loaded, reveal=args.reveal))
    return 0
