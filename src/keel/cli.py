"""The one entrypoint, ``keel``. Thin: parse arguments, load settings, call a module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from keel import __version__

# Each module exposes ``register(subparsers)``; its parsers set ``handler=func(args) -> int``.
COMMAND_MODULES: list[str] = [
    "keel.commands.config_cmd",
    "keel.secrets.commands",
    "keel.gpu.commands",
    "keel.commands.serve_cmd",
    "keel.db.commands",
    "keel.tasks.commands",
    "keel.domain.users.commands",
    "keel.commands.credentials_cmd",
]


# `keel healthcheck` runs every few seconds in every container: it registers only the modules
# that define its targets, not the whole CLI (web framework, ORM), so a probe starts fast.
HEALTHCHECK_MODULES: list[str] = ["keel.commands.serve_cmd", "keel.tasks.commands"]


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keel", description="Keel service command line")
    parser.add_argument("--version", action="version", version=f"keel {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    healthcheck = list(argv or [])[:1] == ["healthcheck"]
    for module_name in HEALTHCHECK_MODULES if healthcheck else COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
