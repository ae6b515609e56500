"""Argument-parser pieces several command modules share (argparse only, public API only)."""

from __future__ import annotations

from typing import Any

_TARGETS = "healthcheck_targets"


def healthcheck_targets(subparsers: Any) -> Any:
    """The ``healthcheck`` command's TARGET subparsers, created by whichever module asks first
    (``keel serve``'s module adds ``api``, the worker's ``worker``)."""
    health = subparsers.choices.get("healthcheck")
    if health is None:
        health = subparsers.add_parser(
            "healthcheck", help="exit 0 when a process is healthy, else 1"
        )
        targets = health.add_subparsers(dest="target", metavar="TARGET", required=True)
        # Kept on the parser (argparse's public defaults) for the next module to find.
        health.set_defaults(**{_TARGETS: targets})
        return targets
    return health.get_default(_TARGETS)
