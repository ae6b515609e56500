"""#14 defect 9: a database or Redis that goes away while the API runs is a 503 with
Retry-After, never a 500 with a traceback; the cause is logged once, not once per request."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from loguru import logger

from keel.app import create_app
from keel.auth.runtime import build_runtime
from keel.db.migrate import migrate
from keel.logging import configure_logging, redact
from tests.service.conftest import FAST_TIMINGS, make_settings
from tests.service.servers import Postgres, RedisServer

pytestmark = pytest.mark.service


@contextlib.contextmanager
def api_with_log(env: dict[str, str]) -> Iterator[tuple[TestClient[Any], io.StringIO]]:
    settings = make_settings({**env, "DEBUG": "false"})
    log = io.StringIO()
    configure_logging(settings, stream=log)
    token = build_runtime(settings).jwt.issue("1", "access", name="outage").token
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            yield client, log
    finally:
        logger.remove()
        redact.clear()


def assert_unavailable(response: Any, what: str) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["detail"] == f"{what} unavailable; retry shortly"
    assert "Traceback" not in response.text


def tracebacks(log: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if "exception" in line]


def test_database_outage_is_503_with_retry_after(redis_env: dict[str, str], tmp_path: Path) -> None:
    own = Postgres()
    own.init()
    own.start()
    own.create_database("keel")
    env = {**own.env("keel"), **redis_env, **FAST_TIMINGS, "DB_CONNECT_TIMEOUT": "1"}
    try:
        asyncio.run(migrate(make_settings(env)))
        with api_with_log(env) as (api, log):
            job = api.post("/api/jobs", json={"kind": "echo"})
            assert job.status_code == 202
            own.stop()
            for _ in range(5):
                assert_unavailable(api.get(f"/api/jobs/{job.json()['id']}"), "database")
                assert_unavailable(api.post("/api/jobs", json={"kind": "echo"}), "database")
            assert api.get("/health/live").status_code == 200
            assert tracebacks(log) == []  # the cause is known: one warning line, no traceback
            warnings = [line for line in log.getvalue().splitlines() if "unavailable" in line]
            assert len(warnings) == 1, warnings
    finally:
        own.stop()
        own.cleanup()


def test_redis_outage_is_503_with_retry_after(pg_env: dict[str, str], tmp_path: Path) -> None:
    own = RedisServer(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    own.start()
    env = {
        **pg_env,
        **own.env(),
        **FAST_TIMINGS,
        "REDIS_CONNECT_RETRIES": "1",
        "JWT_REVOCATION_CACHE_SECONDS": "0",
    }
    try:
        with api_with_log(env) as (api, log):
            assert api.post("/api/jobs", json={"kind": "echo"}).status_code == 202
            own.stop()
            for _ in range(5):
                assert_unavailable(api.get("/api/jobs"), "redis")
            assert tracebacks(log) == []  # the cause is known: one warning line, no traceback
            warnings = [line for line in log.getvalue().splitlines() if "unavailable" in line]
            assert len(warnings) == 1, warnings
    finally:
        own.stop()
