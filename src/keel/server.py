"""``keel serve``: Granian (ASGI, uvloop) hosting :func:`keel.app.app_factory`."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from granian.constants import Interfaces, Loops
from granian.server import Server
from granian.server.common import AbstractServer

from keel.config import Settings
from keel.lifecycle import startup_failure
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


# Plain ASGI shapes (Litestar's typed ones do not cover lifespan messages).
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

# Set by `keel serve` for its Granian workers: where a worker reports a failed startup.
_FAILURE_FILE_ENV = "KEEL_STARTUP_FAILURE_FILE"
# Set by `keel serve` for its Granian workers: the process they must not outlive.
_PARENT_PID_ENV = "KEEL_SERVE_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a Granian worker: ask the kernel to kill this worker when `keel serve` dies (Linux).

    Granian stops its workers when it is stopped, but a ``kill -9`` of the main process left
    workers serving the old configuration, orphaned. SIGKILL, not SIGTERM: with the main
    process gone, Granian's worker signal handler could hang for good on that SIGTERM (holding
    the GIL; several of every 25 kills here left a worker stuck in it). A normal stop of
    `keel serve` still stops its workers gracefully. If the parent is already gone (it died
    before the death signal was asked for), exit now: nothing is in flight yet.
    """
    expected = os.environ.get(_PARENT_PID_ENV)
    if not expected or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != int(expected):
        os._exit(0)


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


def exit_on_startup_failure(app: Any, exit_code: int) -> ASGIApp:
    """Wrap a Granian worker's app: a lifespan that raises
    :class:`~keel.lifecycle.StartupError` stops the whole server (:func:`report_startup_failure`)
    and ends this worker with ``exit_code``.

    Only this entry point ends a process; the app itself just raises.
    """

    async def guarded(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def send_unless_failed(message: Message) -> None:
            # The failure is answered below, with the one line, before Granian sees it.
            if message["type"] != "lifespan.startup.failed":
                await send(message)

        try:
            await app(scope, receive, send_unless_failed)
        except BaseException as exc:
            failure = startup_failure(exc)
            if failure is None:
                raise
            report_startup_failure(str(failure))
            os._exit(exit_code)

    return guarded
