"""JWT issue/verify: each attack from the issue is refused, with the reason kept for logs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from _auth_material import HMAC_SECRET, PemPair, ring
from jose import jwt as jose_jwt

from keel.auth.errors import CredentialError
from keel.auth.jwt import JwtService


def service(resolve, clock=time.time, **ring_overrides):  # type: ignore[no-untyped-def]
    return JwtService(
        ring(resolve, **ring_overrides),
        issuer="keel",
        audience="keel-api",
        leeway_seconds=10,
        max_bytes=4096,
        access_ttl_seconds=900,
        refresh_ttl_seconds=3600,
        clock=clock,
    )


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "iss": "keel",
        "aud": "keel-api",
        "sub": "42",
        "jti": "abc",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "use": "access",
        "roles": [],
    }
    base.update(overrides)
    return base


def forge(payload: dict[str, object], key: str = HMAC_SECRET, **headers: object) -> str:
    headers.setdefault("kid", "k1")
    alg = str(headers.pop("alg", "HS256"))
    return jose_jwt.encode(payload, key, algorithm=alg, headers=headers)


def reason(svc: JwtService, token: str, use: str = "access") -> str:
    with pytest.raises(CredentialError) as info:
        svc.verify(token, use)  # type: ignore[arg-type]
    return info.value.reason


def test_issue_then_verify_round_trip(resolve) -> None:
    svc = service(resolve)
    issued = svc.issue("42", "access", roles=["admin"])
    got = svc.verify(issued.token, "access")
    assert (got.subject, got.roles, got.kid, got.use) == ("42", ("admin",), "k1", "access")
    header = jose_jwt.get_unverified_header(issued.token)
    assert (header["kid"], header["alg"]) == ("k1", "HS256")
    payload = jose_jwt.get_unverified_claims(issued.token)
    assert {"exp", "iat", "nbf", "iss", "aud", "sub", "jti"} <= payload.keys()


def test_alg_none_is_refused(resolve) -> None:
    token = f"{b64({'alg': 'none', 'kid': 'k1'})}.{b64(claims())}."
    assert reason(service(resolve), token) == "not a compact JWS"
    token = f"{b64({'alg': 'none', 'kid': 'k1'})}.{b64(claims())}.AAAA"
    assert reason(service(resolve), token) == "algorithm not allowed"


def test_hs256_signed_with_the_rsa_public_key_is_refused(resolve, rsa_pem: PemPair) -> None:
    svc = service(
        resolve,
        algorithm="RS256",
        private_key_pem=rsa_pem.private,
        allowed_algorithms=["RS256", "HS256"],
    )
    # The classic confusion: HMAC keyed with the PEM public key the attacker can download.
    signing_input = f"{b64({'alg': 'HS256', 'kid': 'k1', 'typ': 'JWT'})}.{b64(claims())}"
    mac = hmac.new(rsa_pem.public.encode(), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert reason(svc, token) == "algorithm does not match the key's algorithm"


def test_algorithm_not_in_list(resolve) -> None:
    token = forge(claims(), alg="HS512", key=HMAC_SECRET * 2)
    assert reason(service(resolve), token) == "algorithm not allowed"


def test_expired_not_yet_valid_and_future_iat(resolve) -> None:
    now = int(time.time())
    svc = service(resolve)
    assert "Expired" in reason(svc, forge(claims(exp=now - 60, iat=now - 900, nbf=now - 900)))
    assert "JWTClaimsError" in reason(svc, forge(claims(nbf=now + 120)))
    assert reason(svc, forge(claims(iat=now + 120))) == "iat in the future"
    # Inside the leeway both still pass.
    svc.verify(forge(claims(exp=now - 5)), "access")
    svc.verify(forge(claims(nbf=now + 5, iat=now + 5)), "access")


def test_wrong_issuer_audience_and_missing_claims(resolve) -> None:
    svc = service(resolve)
    assert "JWTClaimsError" in reason(svc, forge(claims(iss="evil")))
    assert "JWTClaimsError" in reason(svc, forge(claims(aud="other-api")))
    for name in ("exp", "iat", "nbf", "iss", "aud", "sub", "jti"):
        payload = claims()
        del payload[name]
        assert "rejected by python-jose" in reason(svc, forge(payload)), name


def test_tampered_payload(resolve) -> None:
    svc = service(resolve)
    header, _, signature = svc.issue("42", "access").token.split(".")
    token = f"{header}.{b64(claims(roles=['admin']))}.{signature}"
    assert "JWTError" in reason(svc, token)


def test_unknown_kid_and_missing_kid(resolve) -> None:
    svc = service(resolve)
    assert reason(svc, forge(claims(), kid="nope")) == "unknown kid"
    token = jose_jwt.encode(claims(), HMAC_SECRET, algorithm="HS256")
    assert reason(svc, token) == "unknown kid"


def test_oversized_and_malformed_tokens(resolve) -> None:
    svc = service(resolve)
    assert "longer than" in reason(svc, forge(claims(pad="x" * 5000)))
    for token in ("", "a.b", "a.b.c.d.e", "a b.c.d", "a.b.c=", "ä.b.c"):
        assert reason(svc, token) in {"not a compact JWS", "unreadable header"}, token
    assert (
        reason(svc, forge(claims(), crit=["exp"])) == "critical header extensions are not supported"
    )


def test_refresh_token_is_not_an_access_token(resolve) -> None:
    svc = service(resolve)
    refresh = svc.issue("42", "refresh")
    assert reason(svc, refresh.token, "access") == "not an access token"
    assert svc.verify(refresh.token, "refresh").use == "refresh"


def test_key_rotation_old_tokens_verify_new_tokens_use_new_key(resolve, ec_pem: PemPair) -> None:
    old = service(resolve)
    old_token = old.issue("42", "access").token
    rotated = service(
        resolve,
        signing_key_id="k2",
        secret_key="n" * 40,
        verify_keys=json.dumps({"k1": {"alg": "HS256", "key": HMAC_SECRET}}),
    )
    assert rotated.verify(old_token, "access").kid == "k1"
    new_token = rotated.issue("42", "access").token
    assert jose_jwt.get_unverified_header(new_token)["kid"] == "k2"
    assert reason(old, new_token) == "unknown kid"
    # To another family: ES256 signs, the old HS256 key still verifies.
    es = service(
        resolve,
        algorithm="ES256",
        private_key_pem=ec_pem.private,
        signing_key_id="e1",
        allowed_algorithms=["ES256", "HS256"],
        verify_keys=json.dumps({"k1": {"alg": "HS256", "key": HMAC_SECRET}}),
    )
    assert es.verify(old_token, "access").kid == "k1"
    assert es.verify(es.issue("7", "access").token, "access").kid == "e1"


def test_a_remembered_token_still_expires_and_keeps_its_use(resolve) -> None:
    now = [time.time()]
    svc = service(resolve, clock=lambda: now[0])
    token = svc.issue("42", "access").token
    assert svc.verify(token, "access").subject == "42"  # verified, then remembered
    assert svc.verify(token, "access").subject == "42"  # from memory
    assert reason(svc, token, "refresh") == "not a refresh token"
    now[0] += 900 + 11  # past exp + leeway
    assert "Expired" in reason(svc, token)
