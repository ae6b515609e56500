"""#14 defect 8: text a client controls (a path with %0a, an ANSI escape) cannot forge a log
line or reach the terminal raw, in the console format as in JSON."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient
from loguru import logger

from keel.app import create_app
from keel.config import load
from keel.logging import configure_logging, redact

REPO = Path(__file__).resolve().parents[3]
FORGED = "12:00:00.000 INFO    keel.auth admin logged in"
# A console record starts with its time; anything else is a continuation of the one above.
RECORD_START = re.compile(r"\d\d:\d\d:\d\d\.\d{3} ")


def _log(fmt: str) -> Iterator[io.StringIO]:
    settings = load(
        "local",
        root=REPO,
        environ={"LOG_FORMAT": fmt, "DEBUG": "false"},
        secrets_reader=lambda *_: {},
    )
    buffer = io.StringIO()
    configure_logging(settings, stream=buffer)
    with TestClient(create_app(settings, components=[])) as client:
        client.get("/nope%0a" + FORGED.replace(" ", "%20") + "%1b[31m")
        client.get("/api/x", headers={"Authorization": "Bearer \x01"})
    logger.complete()
    yield buffer
    logger.remove()
    redact.clear()


@pytest.fixture
def console_log() -> Iterator[io.StringIO]:
    yield from _log("console")


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    yield from _log("json")


def test_console_lines_cannot_be_forged_from_a_request_path(console_log: io.StringIO) -> None:
    text = console_log.getvalue()
    assert "\x1b" not in text
    lines = text.splitlines()
    access = [line for line in lines if "/nope" in line]
    assert access, text
    assert all(RECORD_START.match(line) for line in access), access
    assert "\\x0a" in access[0]
    assert "\\x1b[31m" in access[0]
    assert not any(line.startswith(FORGED) for line in lines)


def test_json_lines_stay_one_record_each(json_lines: io.StringIO) -> None:
    records = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    paths = [r["path"] for r in records if r.get("logger") == "keel.access"]
    assert any(p.startswith("/nope\n") for p in paths)
    assert not any(r["message"].startswith("12:00") for r in records)
