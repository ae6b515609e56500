"""The Litestar authentication middleware: a Bearer JWT or an HMAC request signature.

No credentials: the request goes on with ``scope["user"] = None`` and the route's guard decides
(public routes need nothing). Credentials present but not valid: 401 at once, with one generic
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
from litestar.middleware._internal.exceptions.middleware import get_exception_handler
from loguru import logger

from keel.auth.atomic import peek_and_add
from keel.auth.errors import CredentialError, ThrottledError, too_many, unauthorized
from keel.auth.principal import Principal
from keel.auth.signatures import (
    SCHEME,
    ApiKeyRecord,
    SignatureVerifier,
    SignedRequest,
    has_signature_headers,
    presented_key_id,
)
from keel.metrics.hooks import auth_refused

if TYPE_CHECKING:
    from litestar.datastructures import State
    from litestar.stores.base import Store
    from litestar.types import ASGIApp, Receive, Scope, Send

    from keel.auth.runtime import AuthRuntime

_BEARER = re.compile(r"Bearer ([A-Za-z0-9._-]+)", re.IGNORECASE)
# Never authenticated: probes and metrics must answer whatever headers a proxy adds.
PUBLIC_PATHS = ("^/health/", "^/metrics")


class ApiKeyDirectory(Protocol):
    """Finds an active API key (with its decrypted secret) by key id."""

    async def find(self, state: State, key_id: str) -> ApiKeyRecord | None: ...


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
        request: Request[Any, Any, Any] = Request(scope, receive, send)
        try:
            principal = await self.authenticate(request)
        except HTTPException as exc:
            await _send_error(request, exc)
            return
        scope["user"] = principal
        scope["auth"] = None
        await next_app(scope, receive, send)

    async def authenticate(self, request: Request[Any, Any, Any]) -> Principal | None:
        authorization = request.headers.get("authorization")
        signed = has_signature_headers(request.headers)
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
        client = request.client.host if request.client else "-"
        auth_refused(reason)
        logger.bind(auth_failure=reason, client=client).info(
            "authentication refused on {} {}: {}", request.method, request.url.path, reason
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
        if await self.runtime.revocations.is_revoked(_revoked(request), claims.jti):
            self._refuse(request, "token revoked")
        if not (claims.subject.isascii() and claims.subject.isdigit()):
            self._refuse(request, "subject is not a user id")
        return Principal(
            kind="user",
            id=int(claims.subject),
            name=claims.name,
            roles=frozenset(claims.roles),
            token_jti=claims.jti,
            token_expires_at=claims.expires_at,
        )

    async def _signature(self, request: Request[Any, Any, Any]) -> Principal:
        """Verify a signed request.

        Throttling without an extra round trip: a valid signature peeks at the key's failure
        counter in the same Redis pipeline that remembers its nonce; a bad one counts a failure.
        Once a key id is over its limit every request with it gets 429, valid or not, so an
        attacker cannot tell from the answers whether a guess was right.
        """
        runtime = self.runtime
        limiter = runtime.signature_failures
        limits = _store(request, "rate_limit")
        nonces = _store(request, "nonces")
        key_id = presented_key_id(request.headers)
        state = request.app.state

        async def lookup(wanted: str) -> ApiKeyRecord | None:
            return await self.api_keys.find(state, wanted)

        async def remember(nonce_key: str, ttl: int) -> bool:
            count, reset_in, added = await peek_and_add(
                limits, limiter.key(str(key_id)), nonces, nonce_key, ttl
            )
            if count >= limiter.limit:
                raise ThrottledError(reset_in)
            return added

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
                    await limiter.failed(limits, key_id)
                except ThrottledError as throttled:
                    raise too_many(throttled.retry_after) from None
            self._refuse(request, exc.reason, SCHEME)
        return Principal(
            kind="service", id=record.id, name=record.name, roles=frozenset(record.roles)
        )


async def _send_error(request: Request[Any, Any, Any], exc: HTTPException) -> None:
    """Answer a 401/429 here, through the app's own handler for HTTP errors.

    Raising would also give the client that answer, but only after the exception had passed
    through the outer middleware (request id, access log) as an unhandled error.
    """
    handlers = request.scope["route_handler"].resolve_exception_handlers()
    handler = get_exception_handler(handlers, exc)
    if handler is None:
        raise exc
    response = handler(request, exc)
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
