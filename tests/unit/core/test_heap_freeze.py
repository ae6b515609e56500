"""The server's app freezes its start-up heap (gc.freeze); an embedded app leaves the
collector alone (its garbage would otherwise be kept forever)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from keel.app import create_app
from keel.config import load


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.parametrize("freeze", [True, False])
def test_freeze_only_when_asked(freeze: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_ENABLED", "false")
    app = create_app(load("local"), server_process=freeze)
    with TestClient(app) as client:
        assert client.get("/health/live").status_code == 200
        frozen = gc.get_freeze_count()
    assert (frozen > 0) is freeze
