"""keel.logging: JSON shape, stdlib interception, redaction, file sinks."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from pathlib import Path

import msgspec
from loguru import logger

from keel.config import Settings
from keel.logging import configure_logging, parse_rotation, register_secret


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_json_lines_have_time_level_message_logger_and_extras(json_log: io.StringIO) -> None:
    logger.bind(request_id="r-1").info("hello {}", "world")
    (record,) = lines(json_log)
    assert record["message"] == "hello world"
    assert record["level"] == "INFO"
    assert record["request_id"] == "r-1"
    assert record["process"] == "api"
    assert str(record["time"]).endswith("+00:00")  # UTC
    assert record["logger"] == __name__


def test_stdlib_loggers_are_intercepted(json_log: io.StringIO) -> None:
    for name in ("granian", "granian.access", "sqlalchemy.pool", "taskiq", "asyncio"):
        logging.getLogger(name).warning("from %s", name)
    records = lines(json_log)
    assert [r["logger"] for r in records] == [
        "granian",
        "granian.access",
        "sqlalchemy.pool",
        "taskiq",
        "asyncio",
    ]
    assert all(r["level"] == "WARNING" for r in records)


def test_registered_secret_never_appears(json_log: io.StringIO) -> None:
    secret = "s3cr3t-Value-9f8e7d"
    register_secret(secret)
    logger.info("password is {}", secret)
    logger.bind(detail={"nested": [secret]}).warning("extra")
    logging.getLogger("sqlalchemy.engine").error("url postgresql://u:%s@h/db", secret)
    try:
        raise ValueError(f"bad {secret}")
    except ValueError:
        logger.exception("failed")
    text = json_log.getvalue()
    assert secret not in text
    assert text.count("[REDACTED]") >= 4
    assert "ValueError: bad [REDACTED]" in text


def test_settings_secrets_are_redacted_after_configure(local_settings: Settings) -> None:
    secret = "from-secrets-file-123456"
    settings = msgspec.structs.replace(local_settings, secret_values=frozenset({secret}))
    buffer = io.StringIO()
    configure_logging(settings, stream=buffer)
    logger.info("leak {}", secret)
    assert secret not in buffer.getvalue()


def test_file_sink_and_startup_log(tmp_path: Path, local_settings: Settings) -> None:
    log = msgspec.structs.replace(
        local_settings.log,
        file=str(tmp_path / "app.log"),
        startup_file=str(tmp_path / "startup.log"),
    )
    settings = msgspec.structs.replace(local_settings, log=log)
    configure_logging(settings, stream=io.StringIO())
    logger.info("ordinary line")
    logger.bind(resource="database").info("started database")
    logger.complete()
    logger.remove()  # flushes the enqueued file sinks
    app_lines = (tmp_path / "app.log").read_text().splitlines()
    startup_lines = (tmp_path / "startup.log").read_text().splitlines()
    assert len(app_lines) == 2
    assert [json.loads(x)["message"] for x in startup_lines] == ["started database"]


def test_time_rotation_is_utc() -> None:
    rotation = parse_rotation("00:00")
    assert isinstance(rotation, dt.time)
    assert rotation.tzinfo == dt.UTC
    assert parse_rotation("100 MB") == "100 MB"


def test_access_lines_have_the_same_shape_and_utc_time_as_other_lines(
    json_log: io.StringIO,
) -> None:
    from keel import logging as keel_logging

    logger.info("before")
    before = dt.datetime.now(dt.UTC)
    keel_logging.access_log("rid-1", "GET", "/x", 204, 0.5)  # no event loop: written at once
    after = dt.datetime.now(dt.UTC)
    plain, access = lines(json_log)
    assert set(plain) <= set(access)
    assert access["logger"] == "keel.access"
    assert (access["request_id"], access["status"], access["duration_ms"]) == ("rid-1", 204, 0.5)
    stamp = dt.datetime.fromisoformat(str(access["time"]))
    assert stamp.utcoffset() == dt.timedelta(0)
    assert before - dt.timedelta(milliseconds=1) <= stamp <= after
    assert len(str(access["time"])) == len(str(plain["time"]))
