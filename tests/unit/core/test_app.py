"""create_app: health endpoints, request ids, lifespan order, startup failures, docs, CORS."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from keel.app import create_app
from keel.components import Component, ReadinessCheck
from keel.config import Settings


class Recorder:
    def __init__(
        self,
        name: str,
        events: list[str],
        fail: bool = False,
        depends_on: tuple[Recorder, ...] = (),
    ) -> None:
        self.name = name
        self.events = events
        self.fail = fail
        self.depends_on = depends_on

    async def start(self) -> None:
        if self.fail:
            raise ConnectionRefusedError(f"{self.name} at 127.0.0.1:5432 refused")
        self.events.append(f"start {self.name}")

    async def stop(self) -> None:
        self.events.append(f"stop {self.name}")


def test_live_is_ok_without_io(local_settings: Settings) -> None:
    with TestClient(create_app(local_settings, components=[])) as client:
        response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_names_each_failing_check(local_settings: Settings) -> None:
    async def ok() -> None:
        return None

    async def down() -> None:
        raise ConnectionError("redis at 127.0.0.1:6379 unreachable")

    component = Component(
        name="x", readiness=[ReadinessCheck("database", ok), ReadinessCheck("redis", down)]
    )
    with TestClient(create_app(local_settings, components=[component])) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["redis"]
    assert body["checks"]["database"] == "ok"
    assert "unreachable" in body["checks"]["redis"]


def test_request_id_is_honoured_or_generated(
    local_settings: Settings, json_log: io.StringIO
) -> None:
    with TestClient(create_app(local_settings, components=[])) as client:
        given = client.get("/health/live", headers={"X-Request-ID": "abc-123"})
        made = client.get("/health/live")
        hostile = client.get("/health/live", headers={"X-Request-ID": "x" * 500})
    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32
    assert hostile.headers["x-request-id"] != "x" * 500
    access = [
        json.loads(line) for line in json_log.getvalue().splitlines() if '"keel.access"' in line
    ]
    first = access[0]
    assert first["request_id"] == "abc-123"
    assert (first["method"], first["path"], first["status"]) == ("GET", "/health/live", 200)
    assert isinstance(first["duration_ms"], float)


def test_unknown_path_and_wrong_method_still_get_request_id_headers_and_access_line(
    local_settings: Settings, json_log: io.StringIO
) -> None:
    # Litestar answers these before any route middleware runs: the outer layer must see them.
    with TestClient(create_app(local_settings)) as client:
        missing = client.get("/nope", headers={"X-Request-ID": "scan-1"})
        wrong = client.delete("/health/live")
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] == "scan-1"
    assert missing.headers["x-frame-options"] == "DENY"
    assert wrong.status_code == 405
    assert len(wrong.headers["x-request-id"]) == 32
    access = [
        json.loads(line) for line in json_log.getvalue().splitlines() if '"keel.access"' in line
    ]
    assert ("scan-1", "/nope", 404) in {(a["request_id"], a["path"], a["status"]) for a in access}
    assert ("DELETE", 405) in {(a["method"], a["status"]) for a in access}


def test_resources_start_in_order_and_stop_in_reverse(local_settings: Settings) -> None:
    events: list[str] = []
    components = [
        Component(name="a", resources=[Recorder("db", events), Recorder("redis", events)]),
        Component(name="b", resources=[Recorder("ids", events)]),
    ]
    with TestClient(create_app(local_settings, components=components)):
        assert events == ["start db", "start redis", "start ids"]
    assert events[3:] == ["stop ids", "stop redis", "stop db"]


def test_resources_start_after_what_they_depend_on_whatever_the_list_order(
    local_settings: Settings,
) -> None:
    events: list[str] = []
    redis = Recorder("redis", events)
    database = Recorder("db", events)
    ids = Recorder("ids", events, depends_on=(redis,))
    queue = Recorder("broker", events, depends_on=(database,))
    # Listed backwards, and redis only as a dependency: the stack orders and completes it.
    component = Component(name="x", resources=[queue, ids, database])
    with TestClient(create_app(local_settings, components=[component])):
        assert events == ["start db", "start broker", "start redis", "start ids"]
    assert events[4:] == ["stop ids", "stop redis", "stop broker", "stop db"]


def test_a_failed_startup_raises_and_never_ends_the_process(local_settings: Settings) -> None:
    from keel.lifecycle import startup_failure

    events: list[str] = []
    started = Recorder("redis", events)
    failing = Recorder("database", events, fail=True, depends_on=(started,))
    app = create_app(local_settings, components=[Component(name="x", resources=[failing])])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    # The ASGI lifespan as a server drives it: the app answers "failed" and raises; it does
    # not exit (only keel.app.app_factory's wrapper, in a Granian worker, does that).
    with pytest.raises(BaseException) as raised:
        asyncio.run(app({"type": "lifespan"}, receive, send))  # type: ignore[arg-type]
    failure = startup_failure(raised.value)
    assert failure is not None, raised.value
    assert str(failure).startswith("startup failed: database: ConnectionRefusedError")
    assert sent[-1]["type"] == "lifespan.startup.failed"
    assert events == ["start redis", "stop redis"]  # what started is stopped again


def test_unhandled_error_returns_500_without_internals(local_settings: Settings) -> None:
    from litestar import get

    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        raise RuntimeError("db password hunter2 leaked?")

    app = create_app(local_settings, components=[Component(name="x", route_handlers=[boom])])
    with TestClient(app) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert response.json()["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(("debug", "status"), [(True, 200), (False, 404)])
def test_docs_only_with_debug(local_settings: Settings, debug: bool, status: int) -> None:
    settings = msgspec.structs.replace(
        local_settings, app=msgspec.structs.replace(local_settings.app, debug=debug)
    )
    with TestClient(create_app(settings, components=[])) as client:
        assert client.get("/docs/openapi.json").status_code == status


def test_cors_allows_only_configured_origins(local_settings: Settings) -> None:
    with TestClient(create_app(local_settings, components=[])) as client:
        allowed = client.options(
            "/health/live",
            headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"},
        )
        refused = client.options(
            "/health/live",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
    assert allowed.headers.get("access-control-allow-origin") == "http://localhost:3000"
    assert "access-control-allow-origin" not in refused.headers


def test_generated_request_ids_are_unique_and_differ_after_fork() -> None:
    import os

    from keel.middleware import _new_request_id

    ids = {_new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a forked Granian worker must not repeat the parent's ids
        os.write(write, _new_request_id().encode())
        os._exit(0)
    os.close(write)  # a child that died before writing ends the read instead of hanging it
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child[:16] != _new_request_id()[:16]
