"""The Litestar authentication middleware: a Bearer JWT or an HMAC request signature.

No credentials: the request goes on with ``scope["user"] = None`` and the route's guard decides
(public routes need nothing); a route with the ``CALLER_REQUIRED`` opt (keel.auth.guards) gets
401 here at once. Credentials present but not valid: 401 at once, with one generic
message; the reason goes to the log. Presenting both schemes at once is refused too.

A signature covers the body, so the middleware builds the request with ``receive`` (Litestar's
``AbstractAuthenticationMiddleware`` hands over a connection without it). Reading the body here
caches it in the scope, so the handler gets the same bytes, and ``request_max_body_size`` still
applies. Public ``ASGIMiddleware`` API only: probes are skipped by request path, routes opt out
with ``exclude_from_auth=True``, CORS preflights (OPTIONS) pass.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn, Protocol
from urllib.parse import quote

from litestar import Request
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from loguru import logger

from keel.auth.errors import CredentialError, ThrottledError, too_many, unauthorized
from keel.auth.guards import CALLER_REQUIRED
from keel.auth.principal import Principal, parse_id
from keel.auth.signatures import (
    HEADERS as SIGNATURE_HEADERS,
)
from keel.auth.signatures import (
    SCHEME,
    ApiKeyRecord,
    SignatureVerifier,
    SignedRequest,
    presented_key_id,
)
from keel.http_errors import http_error_response
from keel.logging import escape_controls
from keel.metrics.hooks import auth_refused

if TYPE_CHECKING:
    from litestar.stores.base import Store
    from litestar.types import ASGIApp, Receive, Scope, Send

    from keel.auth.runtime import AuthRuntime

_BEARER = re.compile(r"Bearer ([A-Za-z0-9._-]+)", re.IGNORECASE)
# Never authenticated: probes and metrics must answer whatever headers a proxy adds.
PUBLIC_PATHS = ("^/health/", "^/metrics")


class ApiKeyDirectory(Protocol):
    """Finds an active API key (with its decrypted secret) by key id."""

    async def find(self, key_id: str) -> ApiKeyRecord | None: ...


class AuthenticationMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)
    exclude_opt_key = "exclude_from_auth"

    def __init__(
        self,
        *,
        runtime: AuthRuntime,
        api_keys: ApiKeyDirectory,
        exclude: Sequence[str] = PUBLIC_PATHS,
    ) -> None:
        self.runtime = runtime
        self.api_keys = api_keys
        # Matched against the request path (not the route's), so a 404 under /health/ is public too.
        skipped_paths = re.compile("|".join(exclude))
        self.should_bypass_for_scope = lambda scope: (
            scope.get("method") == "OPTIONS" or skipped_paths.search(scope["path"]) is not None
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        authorization, signed = _credentials_presented(scope)
        principal: Principal | None = None
        if authorization is not None or signed or scope["route_handler"].opt.get(CALLER_REQUIRED):
            request: Request[Any, Any, Any] = Request(scope, receive, send)
            try:
                principal = await self.authenticate(request, authorization, signed)
                if principal is None:  # no credentials on a route that requires a caller
                    raise unauthorized()
            except HTTPException as exc:
                await _send_error(request, exc)
                return
        scope["user"] = principal
        scope["auth"] = None
        await next_app(scope, receive, send)

    async def authenticate(
        self, request: Request[Any, Any, Any], authorization: str | None, signed: bool
    ) -> Principal | None:
        if authorization is None and not signed:
            return None
        if authorization is not None and signed:
            self._refuse(request, "both a bearer token and a signature")
        if authorization is not None:
            return await self._bearer(request, authorization)
        return await self._signature(request)

    def _refuse(
        self, request: Request[Any, Any, Any], reason: str, scheme: str = "Bearer"
    ) -> NoReturn:
        client = self.runtime.client_address.of_scope(request.scope)
        auth_refused(reason)
        logger.bind(auth_failure=reason, client=client).info(
            "authentication refused on {} {}: {}",
            request.method,
            escape_controls(request.url.path),
            reason,
        )
        raise unauthorized(scheme)

    async def _bearer(self, request: Request[Any, Any, Any], header: str) -> Principal:
        jwt = self.runtime.jwt
        # The cap applies before any parsing, the regex included.
        if len(header) > jwt.max_bytes + 16:
            self._refuse(request, "authorization header too long")
        match = _BEARER.fullmatch(header)
        if match is None:
            self._refuse(request, "malformed authorization header")
        try:
            claims = jwt.verify(match.group(1), "access")
        except CredentialError as exc:
            self._refuse(request, exc.reason)
        revocations, revoked = self.runtime.revocations, _revoked(request)
        if await revocations.is_revoked(revoked, claims.jti):
            self._refuse(request, "token revoked")
        if await revocations.issued_before_reset(revoked, claims.issued_at):
            self._refuse(request, "token issued before the last restore")
        user_id = parse_id(claims.subject)
        if user_id is None:
            self._refuse(request, "subject is not a user id")
        return Principal(
            kind="user",
            id=user_id,
            name=claims.name,
            roles=frozenset(claims.roles),
            token_jti=claims.jti,
            token_expires_at=claims.expires_at,
        )

    async def _signature(self, request: Request[Any, Any, Any]) -> Principal:
        """Verify a signed request.

        Throttling without an extra round trip: a valid signature peeks at this client's
        failures with the key id (and the key's total) in the same Redis script that remembers
        its nonce; a bad one counts a failure for (key id, client). A client over its limit
        gets 429 for every request with that key id, valid or not, so it cannot tell from the
        answers whether a guess was right; other clients of the key are not affected
        (keel.auth.throttle).
        """
        runtime = self.runtime
        throttle = runtime.signature_throttle
        limits = _store(request, "rate_limit")
        nonces = _store(request, "nonces")
        key_id = presented_key_id(request.headers)
        lookup = self.api_keys.find
        client = runtime.client_address.of_scope(request.scope)

        async def remember(nonce_key: str, ttl: int) -> bool:
            return await throttle.peek_and_add(
                limits, str(key_id), client, nonces=nonces, nonce_key=nonce_key, ttl=ttl
            )

        verifier = SignatureVerifier(
            window_seconds=runtime.settings.signature_window_seconds,
            lookup=lookup,
            remember_nonce=remember,
        )
        scope = request.scope
        raw_path = scope.get("raw_path")
        # raw_path is the path as sent; some servers (and Litestar's test client) leave the query
        # string on it, which the ASGI spec excludes.
        path = raw_path.decode("latin-1").partition("?")[0] if raw_path else quote(scope["path"])
        signed = SignedRequest(
            headers=request.headers,
            method=request.method,
            path=path,
            query_string=scope.get("query_string", b"").decode("latin-1"),
            body=await request.body(),
        )
        try:
            record = await verifier.verify(signed)
        except ThrottledError as exc:
            raise too_many(exc.retry_after) from None
        except CredentialError as exc:
            if key_id is not None:
                try:
                    await throttle.failed(limits, key_id, client)
                except ThrottledError as throttled:
                    raise too_many(throttled.retry_after) from None
            self._refuse(request, exc.reason, SCHEME)
        return Principal(
            kind="service", id=record.id, name=record.name, roles=frozenset(record.roles)
        )


_SIGNATURE_HEADERS = frozenset(name.lower().encode("latin-1") for name in SIGNATURE_HEADERS)


def _credentials_presented(scope: Scope) -> tuple[str | None, bool]:
    """(the Authorization header, whether any signature header is present), read from the raw
    headers: most requests need nothing else, so Litestar's header parsing is not paid here."""
    authorization: str | None = None
    signed = False
    for name, value in scope["headers"]:
        if name == b"authorization":
            if authorization is None:  # the first one, as Litestar's headers.get() reads it
                authorization = value.decode("latin-1")
        elif name in _SIGNATURE_HEADERS:
            signed = True
    return authorization, signed


async def _send_error(request: Request[Any, Any, Any], exc: HTTPException) -> None:
    """Answer a 401/429 here, the way the app answers every HTTP error (keel.http_errors).

    Raising would also give the client that answer, but only after the exception had passed
    through the outer middleware (request id, access log) as an unhandled error.
    """
    response = http_error_response(request, exc)
    # app=None: Litestar 2.1+ reads the app from the request (passing it is deprecated), as its
    # own exception middleware does; Litestar 3 drops the argument.
    await response.to_asgi_response(app=None, request=request)(
        request.scope, request.receive, request.send
    )


def _store(request: Request[Any, Any, Any], name: str) -> Store:
    return request.app.stores.get(name)


def _revoked(request: Request[Any, Any, Any]) -> Store:
    return _store(request, "revoked_tokens")


def authentication_middleware(
    runtime: AuthRuntime, api_keys: ApiKeyDirectory
) -> AuthenticationMiddleware:
    return AuthenticationMiddleware(runtime=runtime, api_keys=api_keys)
