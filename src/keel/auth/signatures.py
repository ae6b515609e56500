"""HMAC-SHA256 request signatures for service clients (the format ``docs/auth.md`` documents).

The client signs this string (lines joined by ``\\n``)::

    KEEL-HMAC-SHA256
    <key id>
    <METHOD>
    <path, exactly as sent, percent-encoded>
    <query: name=value pairs sorted, RFC 3986-encoded, joined by &>
    <timestamp: unix seconds>
    <nonce>
    <hex SHA-256 of the body (of b"" when there is none)>

and sends ``X-Keel-Key-Id``, ``X-Keel-Timestamp``, ``X-Keel-Nonce`` and ``X-Keel-Signature``
(lowercase hex HMAC). :func:`sign_request` is the reference client; the server's checks are in
:class:`SignatureVerifier`. Nothing here touches the network or the database.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote

from keel.auth.errors import CredentialError

SCHEME = "KEEL-HMAC-SHA256"
HEADER_KEY_ID = "X-Keel-Key-Id"
HEADER_TIMESTAMP = "X-Keel-Timestamp"
HEADER_NONCE = "X-Keel-Nonce"
HEADER_SIGNATURE = "X-Keel-Signature"
HEADERS = (HEADER_KEY_ID, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)

KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,64}")
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")
_SIGNATURE_PATTERN = re.compile(r"[0-9a-f]{64}")
_TIMESTAMP_PATTERN = re.compile(r"[0-9]{1,12}")


def canonical_query(query_string: str) -> str:
    """Pairs decoded, sorted by (name, value), re-encoded the one RFC 3986 way."""
    pairs = parse_qsl(query_string, keep_blank_values=True)
    return "&".join(
        f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}" for name, value in sorted(pairs)
    )


def string_to_sign(
    *,
    key_id: str,
    method: str,
    path: str,
    query_string: str,
    timestamp: str,
    nonce: str,
    body: bytes,
) -> bytes:
    return "\n".join(
        (
            SCHEME,
            key_id,
            method.upper(),
            path,
            canonical_query(query_string),
            timestamp,
            nonce,
            hashlib.sha256(body).hexdigest(),
        )
    ).encode()


def compute_signature(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign_request(
    *,
    key_id: str,
    secret: str,
    method: str,
    path: str,
    query_string: str = "",
    body: bytes = b"",
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The four headers for one request (the reference client; docs/auth.md shows a copy)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_urlsafe(18)
    message = string_to_sign(
        key_id=key_id,
        method=method,
        path=path,
        query_string=query_string,
        timestamp=stamp,
        nonce=nonce,
        body=body,
    )
    return {
        HEADER_KEY_ID: key_id,
        HEADER_TIMESTAMP: stamp,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: compute_signature(secret.encode(), message),
    }


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The parts of a request a signature covers (the middleware fills it from the ASGI scope)."""

    headers: Mapping[str, str]
    method: str
    path: str
    query_string: str
    body: bytes


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_id: str
    name: str
    secret: bytes = field(repr=False)
    roles: tuple[str, ...]
    id: int


# key id -> the key (None if unknown or disabled).
KeyLookup = Callable[[str], Awaitable[ApiKeyRecord | None]]
# Remember a nonce for a while; False if it was already seen.
NonceSink = Callable[[str, int], Awaitable[bool]]


def presented_key_id(headers: Mapping[str, str]) -> str | None:
    """The key id, if it is well-formed (used to count failures per key id)."""
    key_id = headers.get(HEADER_KEY_ID, "")
    return key_id if KEY_ID_PATTERN.fullmatch(key_id) else None


class SignatureVerifier:
    def __init__(
        self,
        *,
        window_seconds: int,
        lookup: KeyLookup,
        remember_nonce: NonceSink,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window = window_seconds
        self._lookup = lookup
        self._remember_nonce = remember_nonce
        self._clock = clock

    async def verify(self, request: SignedRequest) -> ApiKeyRecord:
        headers = request.headers
        key_id = presented_key_id(headers)
        timestamp = headers.get(HEADER_TIMESTAMP, "")
        nonce = headers.get(HEADER_NONCE, "")
        signature = headers.get(HEADER_SIGNATURE, "")
        if key_id is None:
            raise CredentialError("missing or malformed key id")
        # ASCII digits only: str.isdigit() also accepts "²", which int() then rejects.
        if not _TIMESTAMP_PATTERN.fullmatch(timestamp):
            raise CredentialError("malformed timestamp")
        if abs(self._clock() - int(timestamp)) > self.window:
            raise CredentialError("timestamp outside the window")
        if not NONCE_PATTERN.fullmatch(nonce):
            raise CredentialError("malformed nonce")
        if not _SIGNATURE_PATTERN.fullmatch(signature):
            raise CredentialError("malformed signature")
        record = await self._lookup(key_id)
        # Unknown keys still cost one HMAC so timing does not tell which key ids exist.
        secret = record.secret if record is not None else secrets.token_bytes(32)
        expected = compute_signature(
            secret,
            string_to_sign(
                key_id=key_id,
                method=request.method,
                path=request.path,
                query_string=request.query_string,
                timestamp=timestamp,
                nonce=nonce,
                body=request.body,
            ),
        )
        if not hmac.compare_digest(expected, signature) or record is None:
            raise CredentialError("signature mismatch or unknown key")
        # Only after the signature holds: otherwise anyone could burn a client's nonces.
        # A timestamp may be up to `window` in the future and is accepted for `window` after
        # that, so the nonce must be remembered for two windows.
        if not await self._remember_nonce(f"{key_id}:{nonce}", 2 * self.window):
            raise CredentialError("nonce replayed")
        return record
