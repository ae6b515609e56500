"""Request signatures: canonical form, and each tampering/replay case refused."""

from __future__ import annotations

import hashlib
import time

import pytest

from keel.auth.atomic import add_if_absent
from keel.auth.errors import CredentialError
from keel.auth.signatures import (
    ApiKeyRecord,
    SignatureVerifier,
    SignedRequest,
    canonical_query,
    sign_request,
    string_to_sign,
)
from keel.stores import LockedMemoryStore

KEY = ApiKeyRecord(key_id="kid_test_0001", name="svc", secret=b"s" * 43, roles=(), id=1)


def verifier(now: float | None = None) -> SignatureVerifier:
    store = LockedMemoryStore()

    async def lookup(key_id: str) -> ApiKeyRecord | None:
        return KEY if key_id == KEY.key_id else None

    async def remember(key: str, ttl: int) -> bool:
        return await add_if_absent(store, key, ttl)

    clock = (lambda: now) if now is not None else time.time
    return SignatureVerifier(
        window_seconds=300, lookup=lookup, remember_nonce=remember, clock=clock
    )


def signed(
    method: str = "POST",
    path: str = "/api/jobs",
    query: str = "b=2&a=1",
    body: bytes = b'{"x":1}',
    **kwargs: object,
) -> SignedRequest:
    headers = sign_request(
        key_id=KEY.key_id,
        secret=KEY.secret.decode(),
        method=method,
        path=path,
        query_string=query,
        body=body,
        **kwargs,  # type: ignore[arg-type]
    )
    return SignedRequest(headers=headers, method=method, path=path, query_string=query, body=body)


async def refused(v: SignatureVerifier, request: SignedRequest) -> str:
    with pytest.raises(CredentialError) as info:
        await v.verify(request)
    return info.value.reason


def test_canonical_query_sorts_and_encodes_one_way() -> None:
    assert canonical_query("b=2&a=1&a=0") == "a=0&a=1&b=2"
    assert canonical_query("q=a+b&r=%7E") == canonical_query("r=~&q=a%20b") == "q=a%20b&r=~"
    assert canonical_query("") == ""


def test_string_to_sign_layout() -> None:
    text = string_to_sign(
        key_id="k", method="get", path="/p", query_string="", timestamp="1", nonce="n", body=b""
    ).decode()
    assert text.split("\n") == [
        "KEEL-HMAC-SHA256",
        "k",
        "GET",
        "/p",
        "",
        "1",
        "n",
        hashlib.sha256(b"").hexdigest(),
    ]


async def test_valid_signature_then_replay_refused() -> None:
    v = verifier()
    request = signed()
    assert (await v.verify(request)).key_id == KEY.key_id
    assert await refused(v, request) == "nonce replayed"


async def test_query_reordered_passes_path_changed_fails() -> None:
    v = verifier()
    request = signed()
    reordered = SignedRequest(request.headers, "POST", "/api/jobs", "a=1&b=2", request.body)
    assert (await v.verify(reordered)).key_id == KEY.key_id
    fresh = signed()
    moved = SignedRequest(fresh.headers, "POST", "/api/jobs/1", fresh.query_string, fresh.body)
    assert await refused(v, moved) == "signature mismatch or unknown key"


async def test_body_method_or_query_changed_after_signing() -> None:
    v = verifier()
    r = signed()
    for changed in (
        SignedRequest(r.headers, r.method, r.path, r.query_string, b'{"x":2}'),
        SignedRequest(r.headers, "PUT", r.path, r.query_string, r.body),
        SignedRequest(r.headers, r.method, r.path, "a=1&b=3", r.body),
    ):
        assert await refused(v, changed) == "signature mismatch or unknown key"


async def test_stale_and_future_timestamps() -> None:
    now = time.time()
    v = verifier(now)
    assert await refused(v, signed(timestamp=int(now) - 301)) == "timestamp outside the window"
    assert await refused(v, signed(timestamp=int(now) + 301)) == "timestamp outside the window"
    await v.verify(signed(timestamp=int(now) - 299))


async def test_wrong_key_id_wrong_secret_and_malformed_headers() -> None:
    v = verifier()
    r = signed()
    other = dict(r.headers, **{"X-Keel-Key-Id": "kid_other_0001"})
    assert await refused(v, SignedRequest(other, r.method, r.path, r.query_string, r.body)) == (
        "signature mismatch or unknown key"
    )
    forged = sign_request(key_id=KEY.key_id, secret="wrong" * 9, method="GET", path="/")
    assert await refused(v, SignedRequest(forged, "GET", "/", "", b"")) == (
        "signature mismatch or unknown key"
    )
    for name, value in (
        ("X-Keel-Key-Id", "x"),
        ("X-Keel-Timestamp", "12.5"),
        ("X-Keel-Timestamp", "\u00b2"),  # str.isdigit() says yes, int() says no
        ("X-Keel-Timestamp", "-5"),
        ("X-Keel-Nonce", "short"),
        ("X-Keel-Signature", "ZZ"),
    ):
        headers = dict(signed().headers, **{name: value})
        assert await refused(v, SignedRequest(headers, "POST", "/api/jobs", "b=2&a=1", b'{"x":1}'))


def test_api_key_record_repr_holds_no_secret() -> None:
    assert KEY.secret.decode() not in repr(KEY)
    assert KEY.key_id in repr(KEY)
