"""The one entrypoint, ``keel``. Thin: parse arguments, load settings, call a module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from keel import __version__
from keel.config.errors import ConfigError

# Exit status of a command refused for its configuration (the report names every problem).
CONFIG_ERROR_EXIT = 2

# Each module exposes ``register(subparsers)``; its parsers set ``handler=func(args) -> int``.
COMMAND_MODULES: list[str] = [
    "keel.commands.config_cmd",
    "keel.commands.secrets_cmd",
    "keel.gpu.commands",
    "keel.commands.serve_cmd",
    "keel.db.commands",
    "keel.tasks.commands",
    "keel.commands.users_cmd",
    "keel.commands.apikeys_cmd",
    "keel.commands.credentials_cmd",
    "keel.backup.commands",
    "keel.stack.commands",
    "keel.doctor.commands",
]

# The modules a command needs, by its name. A known command imports only these, so
# `keel healthcheck` (every few seconds in every container) and `keel gpu` start fast instead
# of importing the web framework and the ORM; help and unknown words import everything.
COMMAND_OWNERS: dict[str, tuple[str, ...]] = {
    "config": ("keel.commands.config_cmd",),
    "secrets": ("keel.commands.secrets_cmd",),
    "gpu": ("keel.gpu.commands",),
    "serve": ("keel.commands.serve_cmd",),
    "healthcheck": ("keel.commands.serve_cmd", "keel.tasks.commands"),
    "migrate": ("keel.db.commands",),
    "worker": ("keel.tasks.commands",),
    "users": ("keel.commands.users_cmd",),
    "apikeys": ("keel.commands.apikeys_cmd",),
    "credentials": ("keel.commands.credentials_cmd",),
    "backup": ("keel.backup.commands",),
    "restore": ("keel.backup.commands",),
    "after-restore": ("keel.backup.commands",),
    "stack": ("keel.stack.commands",),
    "doctor": ("keel.doctor.commands",),
}


# What `keel --help` lists, in this order, without importing a single command module (they pull
# in the web framework and the ORM: seconds). A test holds these to what the modules register.
COMMAND_SUMMARIES: dict[str, str] = {
    "config": "inspect the configuration",
    "secrets": "SOPS/age encrypted secrets",
    "gpu": "show this host's NVIDIA GPUs and their processes",
    "serve": "run the API under Granian",
    "healthcheck": "exit 0 when a process is healthy, else 1",
    "migrate": "upgrade the database to the latest schema (safe to run concurrently)",
    "worker": "run Taskiq worker processes for the job queues",
    "users": "manage users (people who log in)",
    "apikeys": "manage API keys (services that sign requests)",
    "credentials": "write service passwords from the settings into files (Compose)",
    "backup": "encrypted PostgreSQL + Redis backup (no action: take one now)",
    "restore": "verify a backup, then restore it (one transaction) and restart",
    "after-restore": "(run by keel restore) requeue jobs, reset sessions",
    "stack": "Docker Swarm: render, deploy, remove the stack",
    "doctor": "check this host's config, secrets, database, Redis, workers (exit 1 on a failure)",
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: only the modules its command needs are imported.

    Without a command word (``keel --help``, ``keel``, an unknown word) the top level is built
    from :data:`COMMAND_SUMMARIES`; ``argv=None`` (library use, tests) registers everything.
    """
    parser = argparse.ArgumentParser(prog="keel", description="Keel service command line")
    parser.add_argument("--version", action="version", version=f"keel {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    first = next((word for word in argv or () if not word.startswith("-")), None)
    if argv is not None and first not in COMMAND_OWNERS:
        for name, summary in COMMAND_SUMMARIES.items():
            subparsers.add_parser(name, help=summary)
        return parser
    for module_name in COMMAND_OWNERS.get(first or "", tuple(COMMAND_MODULES)):
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
    try:
        code: int = handler(args)
    except ConfigError as exc:
        # Every command starts by loading settings: one place reports a bad configuration.
        print(exc.render(), file=sys.stderr)
        return CONFIG_ERROR_EXIT
    return code


if __name__ == "__main__":
    sys.exit(main())
