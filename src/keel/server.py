"""``keel serve``: Granian (ASGI, uvloop) hosting :func:`keel.app.app_factory`."""

from __future__ import annotations

import os
import signal
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
        build_server(settings).serve()
        return failure_file.read_text(encoding="utf-8") if failure_file.exists() else None
