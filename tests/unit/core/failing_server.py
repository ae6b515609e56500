"""`keel serve` whose app has a resource that cannot start (run as a script by the tests)."""

from __future__ import annotations

import sys

from litestar import Litestar
from litestar.datastructures import State

import keel.server
from keel.app import create_app
from keel.cli import main
from keel.components import Component
from keel.config import load
from keel.logging import configure_logging


class UnreachableDatabase:
    name = "database"

    async def start(self, state: State) -> None:
        raise ConnectionRefusedError("connect to 127.0.0.1:1 refused")

    async def stop(self) -> None:
        return None


def factory() -> Litestar:
    settings = load()
    configure_logging(settings)
    return create_app(
        settings, components=[Component(name="db", resources=[UnreachableDatabase()])]
    )


if __name__ == "__main__":
    original = keel.server.build_server

    def build(settings):  # type: ignore[no-untyped-def]
        server = original(settings)
        server.target = "failing_server:factory"
        return server

    keel.server.build_server = build  # type: ignore[assignment]
    sys.exit(main(["serve", "--port", sys.argv[1]]))
