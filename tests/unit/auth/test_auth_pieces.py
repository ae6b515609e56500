"""Small auth pieces: secret encryption, passwords, counters, runtime checks, headers, 429s,
guards."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient
from litestar.types import ASGIApp, Receive, Scope, Send
from tests.support import settings_for

from keel.auth import atomic
from keel.auth.crypto import SecretCipher, SecretCipherError
from keel.auth.errors import AuthConfigError, ThrottledError
from keel.auth.guards import require_authenticated, require_role, require_user
from keel.auth.headers import SecurityHeaders
from keel.auth.principal import Principal
from keel.auth.ratelimit import FailureLimiter, login_rate_limit
from keel.auth.runtime import build_runtime
from keel.domain.users.passwords import hash_password, password_problem, verify_password
from keel.middleware import install
from keel.stores import LockedMemoryStore


def test_api_key_secret_round_trip_is_bound_to_key_id_and_master_key() -> None:
    cipher = SecretCipher("m" * 32)
    blob = cipher.encrypt("kk_one", "the-secret")
    assert "the-secret" not in blob
    assert cipher.decrypt("kk_one", blob) == b"the-secret"
    with pytest.raises(SecretCipherError, match="kk_two: secret does not decrypt"):
        cipher.decrypt("kk_two", blob)
    with pytest.raises(SecretCipherError, match="API_KEY_ENCRYPTION_KEY changed"):
        SecretCipher("n" * 32).decrypt("kk_one", blob)


def test_passwords_are_argon2id_and_checked() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "wrong")
    assert not verify_password(None, "correct horse battery")
    assert not verify_password("not a hash", "x")
    assert password_problem("short") is not None
    assert password_problem("long enough password") is None


async def test_counters_and_set_if_absent_in_memory() -> None:
    store = LockedMemoryStore()
    assert await atomic.add_if_absent(store, "n1", 10)
    assert not await atomic.add_if_absent(store, "n1", 10)
    assert await atomic.peek(store, "c") == (0, 0)
    assert (await atomic.increment(store, "c", 60))[0] == 1
    count, reset_in = await atomic.increment(store, "c", 60)
    assert count == 2
    assert 0 < reset_in <= 60
    limiter = FailureLimiter("x", limit=2, window_seconds=60)
    await limiter.check(store, "bob")
    await limiter.failed(store, "bob")
    await limiter.failed(store, "bob")
    with pytest.raises(ThrottledError) as info:
        await limiter.check(store, "bob")
    assert 0 < info.value.retry_after <= 60
    await limiter.reset(store, "bob")
    await limiter.check(store, "bob")


def _settings(env: str, **environ: str) -> Any:
    return settings_for(env, environ)


def test_runtime_refuses_missing_keys_outside_local_naming_the_setting() -> None:
    with pytest.raises(AuthConfigError, match=r"JWT_SECRET_KEY: required in APP_ENV=test"):
        build_runtime(_settings("test"))
    with pytest.raises(AuthConfigError, match=r"API_KEY_ENCRYPTION_KEY: required"):
        build_runtime(_settings("test", JWT_SECRET_KEY="s" * 40))
    # local works without any: stable development values, logged as such.
    first = build_runtime(_settings("local"))
    second = build_runtime(_settings("local"))
    token = first.jwt.issue("1", "access").token
    assert second.jwt.verify(token, "access").subject == "1"


def _app(hsts: bool) -> Litestar:
    @get("/x")
    async def x() -> dict[str, str]:
        return {}

    @get("/docs/page")
    async def docs() -> str:
        return ""

    limited = login_rate_limit(2)
    app = Litestar([x, docs], middleware=[limited.middleware])
    return install(app, access_log=False, response_headers=[SecurityHeaders(hsts=hsts)])


def test_security_headers_on_every_response_and_hsts_only_behind_tls() -> None:
    with TestClient(_app(hsts=False)) as client:
        response = client.get("/x")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "strict-transport-security" not in response.headers
        missing = client.get("/nowhere")
        assert missing.status_code == 404
        assert missing.headers["x-frame-options"] == "DENY"
        assert "content-security-policy" not in client.get("/docs/page").headers
    with TestClient(_app(hsts=True)) as client:
        assert "max-age=" in client.get("/x").headers["strict-transport-security"]


def test_litestar_rate_limit_answers_429_with_retry_after() -> None:
    with TestClient(_app(hsts=False)) as client:
        assert [client.get("/x").status_code for _ in range(2)] == [200, 200]
        blocked = client.get("/x")
        assert blocked.status_code == 429
        assert 0 < int(blocked.headers["retry-after"]) <= 60


def test_guards_answer_401_without_a_caller_and_403_without_the_kind_or_role() -> None:
    callers = {
        "admin": Principal("user", 1, "ann", frozenset({"admin"})),
        "person": Principal("user", 2, "bob", frozenset()),
        "service": Principal("service", 3, "svc", frozenset({"admin"})),
    }

    def who(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            caller = dict(scope["headers"]).get(b"x-test-caller", b"").decode()
            if caller:
                scope["user"] = callers[caller]
            await app(scope, receive, send)

        return middleware

    @get("/any", guards=[require_authenticated], sync_to_thread=False)
    def any_caller() -> str:
        return "ok"

    @get("/person", guards=[require_user], sync_to_thread=False)
    def person_only() -> str:
        return "ok"

    @get("/admin", guards=[require_role("admin")], sync_to_thread=False)
    def admin_only() -> str:
        return "ok"

    app = Litestar([any_caller, person_only, admin_only], middleware=[who])
    expected = {
        ("/any", ""): 401, ("/any", "person"): 200, ("/any", "service"): 200,
        ("/person", ""): 401, ("/person", "service"): 403, ("/person", "person"): 200,
        ("/admin", ""): 401, ("/admin", "person"): 403, ("/admin", "service"): 200,
        ("/admin", "admin"): 200,
    }  # fmt: skip
    with TestClient(app) as client:
        seen = {
            (path, caller): client.get(path, headers={"x-test-caller": caller}).status_code
            for path, caller in expected
        }
    assert seen == expected
