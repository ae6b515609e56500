"""HTTP: /api/auth/login, /refresh, /logout and /api/users/me. Thin: services own the rules."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException, ServiceUnavailableException
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession

from keel.auth.errors import CredentialError, ThrottledError, too_many, unauthorized
from keel.auth.guards import current_principal, require_authenticated, require_user
from keel.auth.ratelimit import login_rate_limit
from keel.auth.runtime import AuthRuntime
from keel.blocking_pool import PoolBusyError
from keel.domain.users.schemas import (
    Caller,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    TokenPair,
    UserOut,
)
from keel.domain.users.services import SessionService, UserService

# Token responses must never be cached by a browser or a proxy.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _log_refusal(
    request: Request[Any, Any, Any], exc: CredentialError, *, username: str | None = None
) -> None:
    """The reason the client is never told goes to the log (as the auth middleware does)."""
    who = f" for {username!r}" if username is not None else ""
    client = request.client.host if request.client else "-"
    logger.bind(auth_failure=exc.reason, client=client).info(
        "authentication refused on {} {}{}: {}", request.method, request.url.path, who, exc.reason
    )


def _sessions(runtime: AuthRuntime, db_session: AsyncSession) -> SessionService:
    return SessionService(runtime, UserService(db_session))


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]  # noqa: RUF012 - Litestar reads the class attribute

    @post("/refresh", exclude_from_auth=True, status_code=HTTP_200_OK, response_headers=NO_STORE)
    async def refresh(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RefreshRequest],
        auth_runtime: NamedDependency[AuthRuntime],
        db_session: NamedDependency[AsyncSession],
    ) -> TokenPair:
        try:
            return await _sessions(auth_runtime, db_session).refresh(
                data.refresh_token, request.app.stores.get("revoked_tokens")
            )
        except CredentialError as exc:
            _log_refusal(request, exc)
            raise unauthorized() from None

    @post("/logout", guards=[require_user], status_code=HTTP_204_NO_CONTENT)
    async def logout(
        self,
        request: Request[Any, Any, Any],
        auth_runtime: NamedDependency[AuthRuntime],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[LogoutRequest | None] = None,
    ) -> None:
        principal = current_principal(request)
        assert principal is not None  # the guard ran
        assert principal.token_jti is not None
        assert principal.token_expires_at is not None
        try:
            await _sessions(auth_runtime, db_session).logout(
                principal.id,
                principal.token_jti,
                principal.token_expires_at,
                data.refresh_token if data else None,
                request.app.stores.get("revoked_tokens"),
            )
        except CredentialError as exc:
            _log_refusal(request, exc)
            raise unauthorized() from None


@post(
    "/auth/login",
    exclude_from_auth=True,
    status_code=HTTP_200_OK,
    response_headers=NO_STORE,
    tags=["auth"],
)
async def login(
    request: Request[Any, Any, Any],
    data: JSONBody[LoginRequest],
    auth_runtime: NamedDependency[AuthRuntime],
    db_session: NamedDependency[AsyncSession],
) -> TokenPair:
    try:
        return await _sessions(auth_runtime, db_session).login(
            data.username,
            data.password,
            request.app.stores.get("rate_limit"),
            auth_runtime.client_address.of_scope(request.scope),
        )
    except ThrottledError as exc:
        raise too_many(exc.retry_after) from None
    except CredentialError as exc:
        _log_refusal(request, exc, username=data.username)
        raise NotAuthorizedException(detail="invalid username or password") from None
    except PoolBusyError:
        # Every hashing thread busy and the queue full: shed the login, keep the process fast.
        raise ServiceUnavailableException(
            detail="too many logins in progress; retry shortly", headers={"Retry-After": "1"}
        ) from None


class WhoAmIController(Controller):
    path = "/auth/whoami"
    tags = ["auth"]  # noqa: RUF012 - Litestar reads the class attribute

    @get("/", guards=[require_authenticated])
    async def whoami(self, request: Request[Any, Any, Any]) -> Caller:
        """Either scheme: lets a client check its token or its request signing."""
        principal = current_principal(request)
        assert principal is not None  # the guard ran
        return Caller(kind=principal.kind, name=principal.name, roles=sorted(principal.roles))


class UsersController(Controller):
    path = "/users"
    tags = ["users"]  # noqa: RUF012 - Litestar reads the class attribute

    @get("/me", guards=[require_user])
    async def me(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
    ) -> UserOut:
        principal = current_principal(request)
        assert principal is not None  # the guard ran
        user = await UserService(db_session).get_active(principal.id)
        if user is None:
            raise unauthorized()
        return UserOut(
            id=str(user.id),
            username=user.username,
            roles=list(user.roles),
            is_active=user.is_active,
            created_at=user.created_at,
        )


def api_router(runtime: AuthRuntime) -> Router:
    """The routes under /api, with the per-IP login limit on the login route only."""
    login_limited = Router(
        path="/",
        route_handlers=[login],
        middleware=[
            login_rate_limit(
                runtime.settings.login_per_ip_per_minute, runtime.client_address
            ).middleware
        ],
    )
    return Router(
        path="/api",
        route_handlers=[login_limited, AuthController, WhoAmIController, UsersController],
        dependencies={
            "auth_runtime": Provide(lambda: runtime, use_cache=True, sync_to_thread=False)
        },
    )
