"""Route guards. Apply ``require_authenticated`` to anything that needs a caller.

    @get("/api/jobs/{job_id:int}", guards=[require_authenticated])

``require_authenticated`` accepts either scheme (a valid JWT or a valid request signature);
``require_user`` only a person's JWT; ``require_role("admin")`` a caller holding that role.
Failures are 401 (no or bad credentials) or 403 (valid caller, not allowed), never detailed.
Guards are ``async``: Litestar runs a plain function guard in a worker thread on every request.

Hot routes use :data:`CALLER_REQUIRED` instead of ``require_authenticated``: the same rule (no
caller: 401), applied by the authentication middleware itself. A Litestar guard costs a copy of
the route handler per request (~10 us, 5 % of a read by id) before it even runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from keel.auth.errors import unauthorized
from keel.auth.principal import Principal

# Route ``opt``: the authentication middleware answers 401 when the request has no caller.
CALLER_REQUIRED = "keel_caller_required"

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def current_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    user = connection.scope.get("user")
    return user if isinstance(user, Principal) else None


async def require_authenticated(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    if current_principal(connection) is None:
        raise unauthorized()


async def require_user(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    principal = current_principal(connection)
    if principal is None:
        raise unauthorized()
    if principal.kind != "user":
        raise PermissionDeniedException(detail="forbidden")


def require_role(role: str) -> Guard:
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = current_principal(connection)
        if principal is None:
            raise unauthorized()
        if not principal.has_role(role):
            raise PermissionDeniedException(detail="forbidden")

    return guard
