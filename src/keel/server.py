"""``keel serve``: Granian (ASGI, uvloop) hosting :func:`keel.app.app_factory`."""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from granian.constants import Interfaces, Loops
from granian.server import Server
from granian.server.common import AbstractServer

from keel.config import Settings
from keel.logging import granian_log_dictconfig


def build_server(settings: Settings) -> AbstractServer[Any]:
    http = settings.http
    reload_options = (
        {"reload": True, "reload_paths": [settings.root / "src"]} if http.reload else {}
    )
    return Server(
        "keel.app:app_factory",
        address=http.host,
        port=http.port,
        interface=Interfaces.ASGI,
        factory=True,
        loop=Loops.uvloop,
        workers=http.workers,
        runtime_threads=http.runtime_threads,
        backlog=http.backlog,
        respawn_failed_workers=http.respawn_failed_workers,
        workers_kill_timeout=http.workers_kill_timeout,
        # Keel writes its own access line (with the request id); Granian's would duplicate it.
        log_access=False,
        log_dictconfig=granian_log_dictconfig(),
        **reload_options,  # type: ignore[arg-type]
    )


# Set by `keel serve` for its Granian workers: where a worker reports a failed startup.
_FAILURE_FILE_ENV = "KEEL_STARTUP_FAILURE_FILE"
# Set by `keel serve` for its Granian workers: the process they must not outlive.
_PARENT_PID_ENV = "KEEL_SERVE_PID"
_PR_SET_PDEATHSIG = 1


class PortInUseError(Exception):
    """Another process listens on the address ``keel serve`` was told to use."""


def check_port_free(host: str, port: int) -> None:
    """Refuse an address another server holds, before Granian binds it.

    Granian's workers bind with ``SO_REUSEPORT``, so a second ``keel serve`` on a busy port
    would bind too and the kernel would split connections between the old and the new server.
    A plain bind (``SO_REUSEADDR`` only, which tolerates TIME_WAIT, not a listener) tells.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUseError(
                f"keel serve: {host}:{port} is already in use (HTTP_PORT={port}); stop the "
                "server holding it or choose another HTTP_PORT (or --port)"
            ) from None


def die_with_parent() -> None:
    """In a Granian worker: ask the kernel for SIGTERM when `keel serve` dies (Linux).

    Granian stops its workers when it is stopped, but a ``kill -9`` of the main process left
    workers serving the old configuration, orphaned. SIGTERM lets the worker finish in-flight
    requests as on a normal shutdown. If the parent is already gone, stop now.
    """
    expected = os.environ.get(_PARENT_PID_ENV)
    if not expected or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != int(expected):
        os.kill(os.getpid(), signal.SIGTERM)


def report_startup_failure(line: str) -> None:
    """Called in a worker whose lifespan failed: stop the whole server instead of a respawn loop.

    Granian would respawn the worker until it detects a crash loop; a missing database will
    not appear by retrying every few seconds, so the worker records the reason and asks the
    main process to shut down, and ``keel serve`` exits non-zero with that one line.
    """
    failure_file = os.environ.get(_FAILURE_FILE_ENV)
    if not failure_file:
        return
    Path(failure_file).write_text(line, encoding="utf-8")
    os.kill(os.getppid(), signal.SIGTERM)


def serve(settings: Settings) -> str | None:
    """Run until stopped. Returns the startup failure line when a worker could not start."""
    with tempfile.TemporaryDirectory(prefix="keel-serve-") as tmp:
        failure_file = Path(tmp) / "startup-failure"
        os.environ[_FAILURE_FILE_ENV] = str(failure_file)
        if not settings.http.reload:  # with reload a supervisor sits between: no pid to watch
            os.environ[_PARENT_PID_ENV] = str(os.getpid())
        build_server(settings).serve()
        return failure_file.read_text(encoding="utf-8") if failure_file.exists() else None
