"""The issue's attack list through the real app (PostgreSQL + Redis): each attempt gets 401, 403
or 429, never 200 or 500, and the body says nothing about which check failed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from jose import jwt as jose_jwt

from keel.auth.signatures import sign_request

pytestmark = pytest.mark.service

GENERIC_401 = {"status_code": 401, "detail": "invalid or missing credentials"}
OLD_HS_SECRET = "old-hmac-" + "q" * 40  # same as conftest
PASSWORD = "correct horse battery staple"  # same as conftest


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(world: Any, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": "keel",
        "aud": "keel-api",
        "sub": str(world.user_id),
        "jti": f"j{now}{id(overrides)}",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "use": "access",
        "roles": ["admin"],
        "name": world.username,
    }
    base.update(overrides)
    return base


def rs256(world: Any, payload: dict[str, Any], kid: str = "r1") -> str:
    return jose_jwt.encode(payload, world.rsa.private, algorithm="RS256", headers={"kid": kid})


def raw_token(header: dict[str, Any], payload: dict[str, Any], key: bytes, alg: str) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    mac = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(mac)}"


def signed_headers(world: Any, path: str, method: str = "GET", **extra: Any) -> dict[str, str]:
    """Signature headers with the world's service key (``extra``: body, query_string, ...)."""
    return sign_request(
        key_id=world.key_id, secret=world.key_secret, method=method, path=path, **extra
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(response: Any, status: int = 401, *secrets: str) -> None:
    assert response.status_code == status, response.text
    if status == 401:
        assert response.json() == GENERIC_401
    for secret in secrets:
        assert secret not in response.text
    assert "Traceback" not in response.text


async def login(client: Any, username: str, password: str) -> Any:
    return await client.post("/api/auth/login", json={"username": username, "password": password})


# --- happy paths -------------------------------------------------------------------------------


async def test_login_me_refresh_logout(world: Any) -> None:
    w, client = world
    response = await login(client, w.username, PASSWORD)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    pair = response.json()
    assert set(pair) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert (pair["token_type"], pair["expires_in"]) == ("bearer", 15 * 60)
    assert jose_jwt.get_unverified_header(pair["access_token"])["kid"] == "r1"

    me = await client.get("/api/users/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    assert me.json()["username"] == w.username
    assert me.json()["id"] == str(w.user_id)
    assert me.headers["x-content-type-options"] == "nosniff"
    assert me.headers["x-frame-options"] == "DENY"

    refreshed = await client.post(
        "/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code == 200
    # A refresh token works once.
    again = await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_refused(again)

    new = refreshed.json()
    out = await client.post(
        "/api/auth/logout",
        headers=bearer(new["access_token"]),
        json={"refresh_token": new["refresh_token"]},
    )
    assert out.status_code == 204
    # Revoked jti: both tokens are dead until they expire.
    assert_refused(await client.get("/api/users/me", headers=bearer(new["access_token"])))
    assert_refused(
        await client.post("/api/auth/refresh", json={"refresh_token": new["refresh_token"]})
    )


async def test_signed_request_happy_path_and_query_reordered(world: Any) -> None:
    w, client = world
    headers = signed_headers(w, "/api/auth/whoami", query_string="b=2&a=1")
    response = await client.get("/api/auth/whoami?a=1&b=2", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["kind"] == "service"
    # Services cannot act as a person.
    person_only = signed_headers(w, "/api/users/me")
    response = await client.get("/api/users/me", headers=person_only)
    assert response.status_code == 403


async def test_key_rotation_old_hs256_tokens_verify_new_tokens_use_rs256(world: Any) -> None:
    w, client = world
    old = raw_token(
        {"alg": "HS256", "typ": "JWT", "kid": "h0"}, claims(w), OLD_HS_SECRET.encode(), "HS256"
    )
    response = await client.get("/api/users/me", headers=bearer(old))
    assert response.status_code == 200, response.text
    pair = (await login(client, w.username, PASSWORD)).json()
    assert jose_jwt.get_unverified_header(pair["access_token"])["alg"] == "RS256"


# --- JWT attacks -------------------------------------------------------------------------------


async def test_alg_none(world: Any) -> None:
    w, client = world
    header = b64(json.dumps({"alg": "none", "kid": "r1"}).encode())
    payload = b64(json.dumps(claims(w)).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}.AAAA"):
        assert_refused(await client.get("/api/users/me", headers=bearer(token)))


async def test_hs256_signed_with_the_rs256_public_key(world: Any) -> None:
    w, client = world
    public = w.rsa.public.encode()
    for kid in ("r1", "h0", None):
        header = {"alg": "HS256", "typ": "JWT"} | ({"kid": kid} if kid else {})
        token = raw_token(header, claims(w), public, "HS256")
        assert_refused(await client.get("/api/users/me", headers=bearer(token)))


async def test_algorithm_not_in_list(world: Any) -> None:
    w, client = world
    token = raw_token({"alg": "HS512", "kid": "h0"}, claims(w), OLD_HS_SECRET.encode(), "HS512")
    assert_refused(await client.get("/api/users/me", headers=bearer(token)))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"exp": -120, "iat": -900, "nbf": -900}, id="expired"),
        pytest.param({"nbf": 300}, id="not-yet-valid"),
        pytest.param({"iat": 300}, id="issued-in-the-future"),
    ],
)
async def test_time_claims(world: Any, change: dict[str, int]) -> None:
    w, client = world
    now = int(time.time())
    token = rs256(w, claims(w, **{name: now + delta for name, delta in change.items()}))
    assert_refused(await client.get("/api/users/me", headers=bearer(token)))


@pytest.mark.parametrize(
    "change",
    [{"iss": "evil"}, {"aud": "another-api"}, {"use": "refresh"}, {"sub": "not-a-number"}],
    ids=["wrong-iss", "wrong-aud", "refresh-as-access", "bad-sub"],
)
async def test_wrong_claims(world: Any, change: dict[str, str]) -> None:
    w, client = world
    token = rs256(w, claims(w, **change))
    assert_refused(await client.get("/api/users/me", headers=bearer(token)))


async def test_tampered_payload_and_unknown_kid(world: Any) -> None:
    w, client = world
    header, _, signature = rs256(w, claims(w, roles=[])).split(".")
    forged_payload = b64(json.dumps(claims(w, roles=["admin", "root"])).encode())
    assert_refused(
        await client.get("/api/users/me", headers=bearer(f"{header}.{forged_payload}.{signature}"))
    )
    assert_refused(await client.get("/api/users/me", headers=bearer(rs256(w, claims(w), kid="r9"))))


async def test_oversized_token(world: Any) -> None:
    w, client = world
    token = rs256(w, claims(w, padding="x" * 6000))
    assert_refused(await client.get("/api/users/me", headers=bearer(token)))


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer a b",
        "Bearer a.b.c",
        "Token abc",
        "x" * 9000,
    ],
)
async def test_malformed_authorization_header(world: Any, header: str) -> None:
    _, client = world
    response = await client.get("/api/users/me", headers={"Authorization": header})
    assert_refused(response)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_no_credentials_and_both_schemes(world: Any) -> None:
    w, client = world
    assert_refused(await client.get("/api/users/me"))
    signed = signed_headers(w, "/api/users/me")
    both = signed | bearer(rs256(w, claims(w)))
    assert_refused(await client.get("/api/users/me", headers=both))


# --- signature attacks -------------------------------------------------------------------------


async def test_signature_replay(world: Any) -> None:
    w, client = world
    headers = signed_headers(w, "/api/auth/whoami")
    assert (await client.get("/api/auth/whoami", headers=headers)).status_code == 200
    assert_refused(await client.get("/api/auth/whoami", headers=headers), 401, w.key_secret)


@pytest.mark.parametrize("skew", [-301, 301, -3600])
async def test_stale_or_future_timestamp(world: Any, skew: int) -> None:
    w, client = world
    headers = signed_headers(w, "/api/auth/whoami", timestamp=int(time.time()) + skew)
    assert_refused(await client.get("/api/auth/whoami", headers=headers))


async def test_body_changed_after_signing(world: Any) -> None:
    w, client = world
    body = b'{"refresh_token": "a"}'
    headers = signed_headers(w, "/api/auth/logout", "POST", body=body)
    response = await client.post(
        "/api/auth/logout", content=b'{"refresh_token": "b"}', headers=headers
    )
    assert_refused(response)


async def test_path_changed_vs_query_reordered(world: Any) -> None:
    w, client = world
    headers = signed_headers(w, "/api/auth/whoami", query_string="x=1&y=2")
    assert_refused(await client.get("/api/users/me?x=1&y=2", headers=headers))
    headers = signed_headers(w, "/api/auth/whoami", query_string="x=1&y=2")
    assert (await client.get("/api/auth/whoami?y=2&x=1", headers=headers)).status_code == 200


async def test_wrong_key_id_and_wrong_secret(world: Any) -> None:
    w, client = world
    # Someone else's key id with our secret, an unknown key id, our key id with a guessed secret.
    cases = [
        (w.admin_key_id, w.key_secret),
        ("kk_doesnotexist000000", w.key_secret),
        (w.key_id, "guess" * 9),
    ]
    for key_id, secret in cases:
        headers = sign_request(key_id=key_id, secret=secret, method="GET", path="/api/auth/whoami")
        assert_refused(await client.get("/api/auth/whoami", headers=headers), 401, secret)


async def test_signature_failures_per_key_id_are_throttled(world: Any) -> None:
    w, client = world
    statuses = []
    for _ in range(7):
        headers = sign_request(
            key_id=w.admin_key_id, secret="wrong" * 9, method="GET", path="/api/auth/whoami"
        )
        statuses.append((await client.get("/api/auth/whoami", headers=headers)).status_code)
    assert statuses == [401] * 5 + [429] * 2
    # Even the right secret waits out the window now.
    response = await client.get(
        "/api/auth/whoami",
        headers=sign_request(
            key_id=w.admin_key_id, secret=w.admin_key_secret, method="GET", path="/api/auth/whoami"
        ),
    )
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0


# --- login brute force ---------------------------------------------------------------------


async def test_brute_force_login_per_username_gets_429(world: Any) -> None:
    w, client = world
    statuses = [
        (await login(client, w.username, f"guess-{i}-xxxxxxx")).status_code for i in range(3)
    ]
    assert statuses == [401, 401, 401]
    blocked = await login(client, w.username, PASSWORD)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert PASSWORD not in blocked.text
    # Unknown usernames are counted the same way (no user enumeration by status).
    unknown = [(await login(client, "nobody-here", "guess-xxxxxxxx")).status_code for _ in range(4)]
    assert unknown == [401, 401, 401, 429]


async def test_login_attempts_per_ip_get_429(make_world: Any) -> None:
    _, client = await make_world(AUTH_LOGIN_PER_IP_PER_MINUTE="2")
    statuses = [(await login(client, f"user{i}", "wrong-password-x")).status_code for i in range(3)]
    assert statuses == [401, 401, 429]
    assert "retry-after" in (await login(client, "x", "y" * 12)).headers


async def test_logout_reaches_other_processes_within_the_revocation_cache(make_world: Any) -> None:
    import asyncio

    shared = {"APP_NAME": "keel-auth-shared", "JWT_REVOCATION_CACHE_SECONDS": "0.5"}
    w, first = await make_world(**shared)
    _, second = await make_world(**shared)
    access = (await login(first, w.username, PASSWORD)).json()["access_token"]
    # The second process has seen the token (and trusts "not revoked" for 0.5 s).
    assert (await second.get("/api/users/me", headers=bearer(access))).status_code == 200
    assert (await first.post("/api/auth/logout", headers=bearer(access))).status_code == 204
    assert_refused(await first.get("/api/users/me", headers=bearer(access)))
    await asyncio.sleep(0.6)
    assert_refused(await second.get("/api/users/me", headers=bearer(access)))


async def test_signed_body_over_the_size_limit_is_413_not_500(make_world: Any) -> None:
    w, client = await make_world(HTTP_MAX_BODY_BYTES="1024")
    body = b'{"kind": "echo", "payload": {"x": "' + b"a" * 4096 + b'"}}'
    headers = signed_headers(w, "/api/jobs", "POST", body=body)
    response = await client.post("/api/jobs", content=body, headers=headers)
    assert response.status_code == 413


async def test_jobs_api_needs_a_caller_and_takes_either_scheme(world: Any) -> None:
    w, client = world
    body = b'{"kind": "echo", "payload": {"n": 1}}'
    assert_refused(await client.post("/api/jobs", content=body))
    headers = signed_headers(w, "/api/jobs", "POST", body=body)
    created = await client.post("/api/jobs", content=body, headers=headers)
    assert created.status_code == 202, created.text
    path = f"/api/jobs/{created.json()['id']}"
    assert_refused(await client.get(path))
    signed = signed_headers(w, path)
    assert (await client.get(path, headers=signed)).status_code == 200
    access = (await login(client, w.username, PASSWORD)).json()["access_token"]
    assert (await client.get(path, headers=bearer(access))).status_code == 200


@pytest.mark.parametrize("value", [b"\xb2", b"\xff\xfe", b"", b" ", b"9" * 40, b"-1", b"a" * 5000])
async def test_garbage_in_any_auth_header_is_401_never_500(world: Any, value: bytes) -> None:
    w, client = world
    good = signed_headers(w, "/api/jobs")
    for name in [*good, "Authorization"]:
        headers: dict[str, Any] = {} if name == "Authorization" else dict(good)
        headers[name] = value
        response = await client.get("/api/jobs", headers=headers)
        assert response.status_code in (401, 429), (name, value, response.text)


async def test_bad_bodies_on_auth_routes_are_4xx_without_echo(world: Any) -> None:
    w, client = world
    secret_ish = "hunter2-" + "z" * 20
    for body in (
        {"username": 5, "password": secret_ish},
        {"username": w.username, "password": secret_ish, "admin": True},
        {"username": w.username},
        {"username": "x" * 65, "password": secret_ish},
        {"username": w.username, "password": "p" * 1025},
    ):
        response = await client.post("/api/auth/login", json=body)
        assert response.status_code == 400, (body, response.text)
        assert secret_ish not in response.text
    response = await client.post("/api/auth/login", content=b"{not json")
    assert response.status_code == 400
    for token in ("", "garbage", "a.b.c", rs256(w, claims(w, use="refresh", sub="not-a-number"))):
        response = await client.post("/api/auth/refresh", json={"refresh_token": token})
        assert response.status_code in (400, 401), (token, response.text)
    signed = signed_headers(w, "/api/auth/logout", "POST")
    assert (await client.post("/api/auth/logout", headers=signed)).status_code == 403


async def test_probes_and_login_are_not_behind_the_middleware(world: Any) -> None:
    w, client = world
    garbage = {"Authorization": "Bearer not.a.token"}
    assert (await client.get("/health/live", headers=garbage)).status_code == 200
    # CORS preflights carry no credentials of their own; they are never refused as a 401.
    assert (await client.options("/api/users/me", headers=garbage)).status_code == 204
    # exclude_from_auth: a stale token in the client does not stop a fresh login.
    body = {"username": w.username, "password": PASSWORD}
    assert (await client.post("/api/auth/login", json=body, headers=garbage)).status_code == 200
    assert_refused(await client.get("/api/users/me", headers=garbage))
