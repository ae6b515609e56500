"""``keel gpu``: this host's GPUs and their processes, once or every N seconds, as text or JSON."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

import msgspec

from keel.config import ENVIRONMENTS, Settings, load
from keel.gpu.snapshot import FAKE_LAYER_MISSING, fake_layer, snapshot
from keel.gpu.view import render

CLEAR_SCREEN = "\x1b[H\x1b[2J"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gpu",
        help="show this host's NVIDIA GPUs and their processes",
        description=(
            "Show this host's NVIDIA GPUs (gpustat/NVML). Exits 0 and prints "
            "'no NVIDIA GPU visible' on a host without one."
        ),
    )
    parser.add_argument(
        "--env", choices=ENVIRONMENTS, help="environment (default: $APP_ENV or local)"
    )
    parser.add_argument(
        "--watch",
        type=_positive_seconds,
        metavar="SECONDS",
        help="refresh every SECONDS until interrupted (with --json: one JSON document per line)",
    )
    parser.add_argument(
        "--count", type=_positive_count, metavar="N", help="with --watch: stop after N snapshots"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the snapshot as JSON (schema: docs/gpu.md)"
    )
    parser.set_defaults(handler=run)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--watch expects seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"--watch expects a positive number, got {text!r}")
    return value


def _positive_count(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"--count expects a whole number from 1, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    if args.count is not None and args.watch is None:
        print("keel gpu: --count goes with --watch SECONDS", file=sys.stderr)
        return 2
    settings = load(args.env)
    problem = _fixture_problem(settings)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if args.watch is None:
        _show(settings, as_json=args.json, out=sys.stdout, compact=False)
        return 0
    return watch(settings, args.watch, as_json=args.json, count=args.count, out=sys.stdout)


def watch(
    settings: Settings, interval: float, *, as_json: bool, count: int | None, out: TextIO
) -> int:
    """Print a snapshot every ``interval`` seconds; Ctrl-C ends it with exit code 0."""
    clear = not as_json and out.isatty()
    shown = 0
    try:
        while count is None or shown < count:
            started = time.monotonic()
            if clear:
                out.write(CLEAR_SCREEN)
            elif shown and not as_json:
                out.write("\n")
            _show(settings, as_json=as_json, out=out, compact=True)
            shown += 1
            if count is not None and shown >= count:
                break
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
    return 0


def _show(settings: Settings, *, as_json: bool, out: TextIO, compact: bool) -> None:
    snap = snapshot(settings)
    if as_json:
        encoded = msgspec.json.encode(snap)
        out.write((encoded if compact else msgspec.json.format(encoded, indent=2)).decode() + "\n")
    else:
        out.write(render(snap) + "\n")
    out.flush()


def _fixture_problem(settings: Settings) -> str | None:
    # A broken fake is a configuration mistake: fail loudly here (snapshot() itself never raises).
    if not settings.gpu.fake_nvml:
        return None
    fake_nvml = fake_layer()
    if fake_nvml is None:
        return FAKE_LAYER_MISSING
    try:
        fake_nvml.load_fixture(fake_nvml.resolve_fixture(settings.gpu.fake_nvml, settings.root))
    except fake_nvml.FixtureError as exc:
        return str(exc)
    except ImportError:
        return None  # snapshot() reports the missing bindings as "no NVIDIA GPU visible"
    return None
