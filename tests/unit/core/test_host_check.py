"""ALLOWED_HOSTS at the edge: what is allowed, what gets 400, probes exempt."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from keel.app import create_app
from keel.config import load
from keel.host_check import HostCheck


def test_star_turns_the_check_off() -> None:
    assert HostCheck.from_setting(["*"]) is None
    assert HostCheck.from_setting(["api.example.com", "*"]) is None


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        (b"api.example.com", True),
        (b"API.Example.com:443", True),  # case and port do not matter
        (b"127.0.0.1:8000", True),
        (b"[::1]:8000", True),
        (b"eu.tenant.example.org", True),  # *.example.org
        (b"example.org", False),  # the wildcard is for subdomains only
        (b"evil.com", False),
        (b"api.example.com.evil.com", False),
        (b"", False),
        (None, False),
    ],
)
def test_hosts(host: bytes | None, allowed: bool) -> None:
    check = HostCheck(["api.example.com", "127.0.0.1", "::1", "*.example.org"])
    assert check.allows(host, "/api/jobs") is allowed


def test_probes_are_exempt() -> None:
    assert HostCheck(["api.example.com"]).allows(b"10.0.0.7:8000", "/health/live")


def _app(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return create_app(load("local"))


def test_the_app_refuses_another_host_with_its_usual_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = _app(monkeypatch, ALLOWED_HOSTS="api.example.com", METRICS_ENABLED="false")
    with TestClient(app, base_url="http://evil.com") as client:
        refused = client.get("/api/auth/whoami")
        probe = client.get("/health/live")
    assert refused.status_code == 400
    assert refused.json() == {"status_code": 400, "detail": "invalid host header"}
    assert refused.headers["x-request-id"]
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert probe.status_code == 200
    with TestClient(app, base_url="http://api.example.com:8000") as client:
        assert client.get("/health/live").status_code == 200
        assert client.get("/api/auth/whoami").status_code == 401  # past the host check


def test_cors_still_answers_requests_with_an_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _app(monkeypatch, CORS_ORIGINS="https://app.example.com", METRICS_ENABLED="false")
    with TestClient(app) as client:
        simple = client.get("/health/live", headers={"Origin": "https://app.example.com"})
        plain = client.get("/health/live")
        preflight = client.options(
            "/api/jobs",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "POST",
            },
        )
    assert simple.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in plain.headers
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
