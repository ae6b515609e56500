"""Fixtures shared by the unit suites: local settings, and logging captured as JSON."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from loguru import logger
from tests.support import REPO, no_secrets

from keel.config import Settings, load
from keel.logging import configure_logging, redact


@pytest.fixture
def local_settings() -> Settings:
    return load(
        "local",
        root=REPO,
        environ={"LOG_FORMAT": "json", "DEBUG": "false"},
        secrets_reader=no_secrets,
    )


@pytest.fixture
def json_log(local_settings: Settings) -> Iterator[io.StringIO]:
    """Logging configured as in a container, captured into a buffer."""
    buffer = io.StringIO()
    configure_logging(local_settings, stream=buffer)
    yield buffer
    logger.remove()
    redact.clear()
