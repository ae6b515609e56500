"""`keel healthcheck api --ready-once`: the Swarm healthcheck gates first traffic on readiness,
then checks liveness only, so a database outage does not get every api task killed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import keel.health_probe
from keel.cli import main


class FakeApi:
    """A real HTTP server with the api's two probe paths; their answers are set by the test."""

    def __init__(self) -> None:
        self.status = {"/health/ready": 503, "/health/live": 200}
        self.seen: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.seen.append(self.path)
                code = api.status.get(self.path, 404)
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b'{"failing": ["db"]}' if code != 200 else b'{"status": "ok"}')

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    monkeypatch.setattr(keel.health_probe, "READY_MARKER_DIR", str(tmp_path))
    fake = FakeApi()
    monkeypatch.setenv("HTTP_PORT", str(fake.port))
    yield fake
    fake.server.shutdown()


def check() -> int:
    return main(["healthcheck", "api", "--ready-once", "--timeout", "2"])


def test_not_ready_yet_is_unhealthy_then_liveness_only(api: FakeApi, tmp_path: Path) -> None:
    assert check() == 1  # starting: DB not reachable yet, no traffic for this task
    assert api.seen == ["/health/ready"]
    assert not (tmp_path / "keel-ready-once-api").exists()

    api.status["/health/ready"] = 200
    assert check() == 0  # ready once: traffic may flow
    assert (tmp_path / "keel-ready-once-api").exists()

    api.status["/health/ready"] = 503  # a DB outage
    assert check() == 0  # still alive: Swarm must not kill it
    assert api.seen[-1] == "/health/live"

    api.status["/health/live"] = 500  # the process itself is broken
    assert check() == 1


def test_without_the_flag_readiness_is_checked_every_time(api: FakeApi) -> None:
    api.status["/health/ready"] = 200
    assert main(["healthcheck", "api"]) == 0
    api.status["/health/ready"] = 503
    assert main(["healthcheck", "api"]) == 1
    assert api.seen == ["/health/ready", "/health/ready"]
