"""Issue and verify JWTs with python-jose, with every check Keel relies on done explicitly.

Order of checks on an incoming token (cheap and parse-free first):
size cap -> compact JWS shape -> header (``alg`` in the allowed list, ``kid`` in the ring,
``alg`` equal to that key's algorithm, no ``crit``) -> signature with that one typed key ->
``exp``/``nbf``/``iat``/``iss``/``aud``/``sub``/``jti`` required and checked with a small leeway
-> token use (access vs refresh). Revocation (a store lookup) is the caller's async step.

A token that passed all of that is remembered (keyed by its exact bytes, signature included)
until it expires, so a client sending the same token again costs a dict lookup plus the time
checks, not a second parse and HMAC/RSA verification.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jose import jws
from jose import jwt as jose_jwt
from jose.exceptions import JOSEError

from keel.auth.errors import CredentialError
from keel.auth.keys import KeyRing

TokenUse = Literal["access", "refresh"]
# Three base64url segments, nothing else (JWE has five; whitespace and padding are refused).
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_REQUIRED = ("exp", "iat", "nbf", "iss", "aud", "sub", "jti")
_CACHE_MAX = 10_000
_WRONG_USE = {"access": "not an access token", "refresh": "not a refresh token"}


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    jti: str
    use: TokenUse
    expires_at: int
    issued_at: int
    roles: tuple[str, ...]
    kid: str
    # The username, for logs and /me (access tokens only; "" otherwise).
    name: str = ""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: TokenClaims
    expires_in: int


class JwtService:
    def __init__(
        self,
        ring: KeyRing,
        *,
        issuer: str,
        audience: str,
        leeway_seconds: int,
        max_bytes: int,
        access_ttl_seconds: int,
        refresh_ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ring = ring
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway_seconds
        self.max_bytes = max_bytes
        self.ttl: dict[TokenUse, int] = {
            "access": access_ttl_seconds,
            "refresh": refresh_ttl_seconds,
        }
        self._clock = clock
        # token -> (claims, nbf) of tokens that passed every check.
        self._verified: dict[str, tuple[TokenClaims, int]] = {}

    def issue(
        self, subject: str, use: TokenUse, roles: Sequence[str] = (), name: str = ""
    ) -> IssuedToken:
        key = self.ring.signing
        assert key.signer is not None  # the ring's signing key always has a signer
        now = int(self._clock())
        ttl = self.ttl[use]
        jti = secrets.token_urlsafe(18)
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "jti": jti,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "use": use,
        }
        if use == "access":
            payload["roles"] = list(roles)
            payload["name"] = name
        token = jose_jwt.encode(
            payload, key.signer, algorithm=key.algorithm, headers={"kid": key.kid}
        )
        claims = TokenClaims(subject, jti, use, now + ttl, now, tuple(roles), key.kid, name)
        return IssuedToken(token=token, claims=claims, expires_in=ttl)

    def verify(self, token: str, use: TokenUse) -> TokenClaims:
        """The token's claims, or :class:`CredentialError` (its reason is for logs only)."""
        if len(token) > self.max_bytes:
            raise CredentialError(f"token longer than {self.max_bytes} bytes")
        cached = self._verified.get(token)
        if cached is not None:
            return self._still_valid(token, *cached, use)
        if not _COMPACT_JWS.fullmatch(token):
            raise CredentialError("not a compact JWS")
        try:
            header = jws.get_unverified_header(token)
        except JOSEError:
            raise CredentialError("unreadable header") from None
        alg = header.get("alg")
        kid = header.get("kid")
        if not isinstance(alg, str) or alg not in self.ring.allowed_algorithms:
            raise CredentialError("algorithm not allowed")
        if "crit" in header:
            raise CredentialError("critical header extensions are not supported")
        key = self.ring.for_kid(kid) if isinstance(kid, str) else None
        if key is None:
            raise CredentialError("unknown kid")
        if key.algorithm != alg:
            raise CredentialError("algorithm does not match the key's algorithm")
        options = {f"require_{name}": True for name in _REQUIRED}
        options["leeway"] = self.leeway  # type: ignore[assignment]
        try:
            claims = jose_jwt.decode(
                token,
                key.verifier,
                algorithms=[key.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options=options,
            )
        except JOSEError as exc:
            raise CredentialError(f"rejected by python-jose: {type(exc).__name__}") from None
        checked, not_before = self._check_claims(claims, use, key.kid)
        if len(self._verified) >= _CACHE_MAX:
            self._verified.clear()
        self._verified[token] = (checked, not_before)
        return checked

    def _still_valid(
        self, token: str, claims: TokenClaims, not_before: int, use: TokenUse
    ) -> TokenClaims:
        now = self._clock()
        if now > claims.expires_at + self.leeway:
            self._verified.pop(token, None)
            raise CredentialError("rejected by python-jose: ExpiredSignatureError")
        if now < not_before - self.leeway:
            raise CredentialError("rejected by python-jose: JWTClaimsError")
        if claims.use != use:
            raise CredentialError(_WRONG_USE[use])
        return claims

    def _check_claims(
        self, claims: dict[str, Any], use: TokenUse, kid: str
    ) -> tuple[TokenClaims, int]:
        """Every claim by type and range (signed is not the same as sane); also returns nbf."""
        # python-jose only checks that iat is a number; a token from the future is refused here.
        now = self._clock()
        issued_at = _numeric_date(claims.get("iat"), "iat")
        not_before = _numeric_date(claims.get("nbf"), "nbf")
        expires_at = _numeric_date(claims.get("exp"), "exp")
        if issued_at > now + self.leeway:
            raise CredentialError("iat in the future")
        if claims.get("use") != use:
            raise CredentialError(_WRONG_USE[use])
        subject, jti = claims.get("sub"), claims.get("jti")
        if not isinstance(subject, str) or not subject or len(subject) > 64:
            raise CredentialError("bad sub")
        if not isinstance(jti, str) or not jti or len(jti) > 64:
            raise CredentialError("bad jti")
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise CredentialError("bad roles")
        name = claims.get("name", "")
        if not isinstance(name, str):
            raise CredentialError("bad name")
        claims_out = TokenClaims(subject, jti, use, expires_at, issued_at, tuple(roles), kid, name)
        return claims_out, not_before


# NumericDate (RFC 7519): seconds since the epoch. Far beyond any real token, inside int64.
_MAX_NUMERIC_DATE = 2**40


def _numeric_date(value: Any, name: str) -> int:
    """A JSON number (not a boolean: ``True`` is an ``int`` in Python), finite and in range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CredentialError(f"{name} is not a number")
    if not 0 <= value <= _MAX_NUMERIC_DATE:  # NaN fails this too
        raise CredentialError(f"{name} out of range")
    return int(value)
