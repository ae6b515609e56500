"""`keel serve` whose app has a resource that cannot start (run as a script by the tests)."""

from __future__ import annotations

import sys

import keel.server
from keel.app import STARTUP_FAILED_EXIT, create_app
from keel.cli import main
from keel.components import Component
from keel.config import load
from keel.logging import configure_logging
from keel.server import ASGIApp, exit_on_startup_failure


class UnreachableDatabase:
    name = "database"
    depends_on = ()

    async def start(self) -> None:
        raise ConnectionRefusedError("connect to 127.0.0.1:1 refused")

    async def stop(self) -> None:
        return None


def factory() -> ASGIApp:
    """Like keel.app.app_factory (the Granian entry point), with a database that is never up."""
    settings = load()
    configure_logging(settings)
    app = create_app(settings, components=[Component(name="db", resources=[UnreachableDatabase()])])
    return exit_on_startup_failure(app, STARTUP_FAILED_EXIT)


if __name__ == "__main__":
    original = keel.server.build_server

    def build(settings):  # type: ignore[no-untyped-def]
        server = original(settings)
        server.target = "failing_server:factory"
        return server

    keel.server.build_server = build  # type: ignore[assignment]
    sys.exit(main(["serve", "--port", sys.argv[1]]))
