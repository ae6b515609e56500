"""What the API tells a client that got something wrong, and what the docs promise about it."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from loguru import logger

from keel.app import create_app
from keel.auth.runtime import build_runtime
from keel.config import Settings, load
from keel.db.migrate import migrate

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / "docs"


def _settings(tmp_path: Path, **extra: str) -> Settings:
    return load(
        "local",
        root=REPO,
        environ={"DB_DATABASE": str(tmp_path / "k.db"), "LOG_LEVEL": "INFO", **extra},
        secrets_reader=lambda path, environ, env: {},
    )


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient[Any]]:
    settings = _settings(tmp_path, HTTP_MAX_BODY_BYTES="200")
    asyncio.run(migrate(settings))
    token = build_runtime(settings).jwt.issue("1", "access", name="tester").token
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def test_empty_body_says_it_is_empty(api: TestClient[Any]) -> None:
    response = api.post("/api/jobs", content=b"", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["extra"][0]["message"].startswith("the request body is empty")
    assert "'data'" not in response.text


def test_outer_body_errors_are_400_kind_and_payload_errors_422(api: TestClient[Any]) -> None:
    assert api.post("/api/jobs", json={"payload": {}}).status_code == 400  # no kind
    assert api.post("/api/jobs", json={"kind": "echo", "extra": 1}).status_code == 400
    unknown = api.post("/api/jobs", json={"kind": "nope"})
    assert unknown.status_code == 422
    assert "unknown job kind 'nope'" in unknown.json()["detail"]
    bad = api.post("/api/jobs", json={"kind": "sleep", "payload": {"seconds": "x"}})
    assert bad.status_code == 422
    assert "$.seconds" in bad.json()["detail"]
    jobs_doc = (DOCS / "jobs.md").read_text()
    assert "is a `400` naming the field" in jobs_doc
    assert "is a `422` naming it" in jobs_doc


def test_body_too_large_names_the_limit_and_its_setting(api: TestClient[Any]) -> None:
    response = api.post(
        "/api/jobs",
        content=b'{"kind": "echo", "payload": {"a": "' + b"x" * 300 + b'"}}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "request body larger than 200 bytes (HTTP_MAX_BODY_BYTES)"


def test_bad_cursor_is_400_about_the_cursor(api: TestClient[Any]) -> None:
    response = api.get("/api/jobs", params={"cursor": "abc"})
    assert response.status_code == 400
    assert "cursor 'abc' is not a page cursor" in response.json()["detail"]
    assert "job id" not in response.json()["detail"]


def test_a_refused_login_logs_why(api: TestClient[Any]) -> None:
    lines = io.StringIO()
    sink = logger.add(lines, level="INFO", format="{message}")
    try:
        refused = api.post("/api/auth/login", json={"username": "ghost", "password": "x" * 12})
    finally:
        logger.remove(sink)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "invalid username or password"
    assert "authentication refused on POST /api/auth/login for 'ghost':" in lines.getvalue()
    auth_doc = (DOCS / "auth.md").read_text()
    assert '"invalid username or password"' in auth_doc


def test_every_query_parameter_in_the_docs_is_one_the_api_declares(tmp_path: Path) -> None:
    settings = _settings(tmp_path, DEBUG="true")
    with TestClient(create_app(settings)) as client:
        schema = client.get("/docs/openapi.json").json()
    declared = {
        parameter["name"]
        for item in schema["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
        for parameter in operation.get("parameters", [])
        if parameter.get("in") == "query"
    }
    used: set[str] = set()
    for doc in [*DOCS.glob("*.md"), REPO / "README.md"]:
        for query in re.findall(r"/api/[\w/{}$]*\?([^\s\"'`)]+)", doc.read_text()):
            used |= {pair.split("=", 1)[0] for pair in query.split("&")}
    assert used, "no documented query parameters found"
    assert used <= declared, f"documented but not declared: {used - declared}"
