"""#14 defect 3: bytes a client controls never make a 500, and unhandled errors cannot flood
the log (one traceback per cause, then a count)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import get
from litestar.testing import TestClient

from keel.app import create_app
from keel.auth.runtime import build_runtime
from keel.components import Component
from keel.config import Settings, load
from keel.error_digest import ErrorDigest, unhandled_errors

REPO = Path(__file__).resolve().parents[3]
DEEP = b"[" * 1000 + b"]" * 1000
BAD_UTF8 = {
    "/api/auth/login": b'{"username": "al\xffice", "password": "x"}',
    "/api/auth/refresh": b'{"refresh_token": "\xc3("}',
    "/api/jobs": b'{"kind": "echo", "payload": {"k": "\xed\xa0\x80"}}',
}


@pytest.fixture
def full_app_client(tmp_path: Path) -> Iterator[tuple[TestClient, Settings]]:  # type: ignore[type-arg]
    settings = load(
        "local",
        root=REPO,
        environ={"LOG_FORMAT": "json", "DEBUG": "false", "DB_DATABASE": str(tmp_path / "k.db")},
        secrets_reader=lambda *_: {},
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, settings


@pytest.mark.parametrize("path", sorted(BAD_UTF8))
@pytest.mark.parametrize("kind", ["deep", "utf8"])
def test_malformed_json_is_400_with_a_reason(
    full_app_client: tuple[TestClient, Settings],  # type: ignore[type-arg]
    path: str,
    kind: str,
) -> None:
    client, settings = full_app_client
    token = build_runtime(settings).jwt.issue("123", "access", roles=["admin"]).token
    body = DEEP if kind == "deep" else BAD_UTF8[path]
    response = client.post(
        path,
        content=body,
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"}
        if path == "/api/jobs"
        else {"content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    reason = "nested too deeply" if kind == "deep" else "invalid UTF-8"
    assert response.json() == {"status_code": 400, "detail": f"malformed JSON body: {reason}"}


def test_a_repeated_unhandled_error_logs_one_traceback_then_a_count(
    local_settings: Settings, json_log: io.StringIO
) -> None:
    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        raise RuntimeError("always the same bug")

    unhandled_errors._seen.clear()
    app = create_app(local_settings, components=[Component(name="x", route_handlers=[boom])])
    with TestClient(app, raise_server_exceptions=False) as client:
        ids = [client.get("/boom").headers["x-request-id"] for _ in range(50)]
    errors = [
        line
        for line in map(json.loads, json_log.getvalue().splitlines())
        if line["level"] == "ERROR"
    ]
    assert len(errors) == 1, errors
    assert "always the same bug" in errors[0]["exception"]
    assert errors[0]["request_id"] == ids[0]


def test_digest_logs_again_after_the_window_with_the_count() -> None:
    now = [0.0]
    digest = ErrorDigest(window_seconds=60, clock=lambda: now[0])

    def fail() -> Exception:
        try:
            raise ValueError("x")
        except ValueError as exc:
            return exc

    assert digest.record(fail(), "GET /a")
    assert not any(digest.record(fail(), "GET /a") for _ in range(9))
    now[0] = 61.0
    assert digest.record(fail(), "GET /a")
    assert digest._seen[next(iter(digest._seen))].suppressed == 0
