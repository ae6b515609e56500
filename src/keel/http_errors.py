"""The one mapping from exceptions to HTTP answers.

- :class:`~litestar.exceptions.HTTPException`: its status and detail (redacted);
- a domain error a feature registered (``Component.errors``: exception type -> status and
  headers, e.g. ``JobNotFoundError`` -> 404): that status, ``detail`` = the error's message;
- the database or Redis unavailable (:mod:`keel.outages`): 503 + ``Retry-After``;
- anything else: 500 with the request id and no internals (outside DEBUG), logged once per
  distinct cause (:mod:`keel.error_digest`).

Handlers stay thin: they raise the domain's own exceptions and never catch them to translate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE

from keel.error_digest import unhandled_errors
from keel.error_text import readable
from keel.logging import escape_controls, redact
from keel.outages import RETRY_AFTER_SECONDS as OUTAGE_RETRY_AFTER
from keel.outages import log_outage, unavailable_dependency

ExceptionHandler = Callable[[Request[Any, Any, Any], Any], Response[Any]]


@dataclass(frozen=True, slots=True)
class ErrorStatus:
    """How a domain exception is answered: its status code and extra response headers."""

    status_code: int
    headers: Mapping[str, str] = field(default_factory=dict)


def http_error_response(
    request: Request[Any, Any, Any], exc: HTTPException
) -> Response[dict[str, Any]]:
    limit = request.app.request_max_body_size
    # Litestar's terse details made readable (e.g. a 413 names the limit and its setting).
    detail, extra = readable(
        exc.status_code, str(exc.detail), exc.extra, limit if isinstance(limit, int) else None
    )
    body: dict[str, Any] = {"status_code": exc.status_code, "detail": redact(detail)}
    if extra and (request.app.debug or exc.status_code < 500):
        body["extra"] = extra
    return Response(
        body, status_code=exc.status_code, headers=exc.headers, media_type=MediaType.JSON
    )


def internal_error_response(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[dict[str, Any]]:
    """A dependency down is a 503 (keel.outages); anything else is logged once per cause with
    the request id (keel.error_digest), and the client gets no internals (outside DEBUG)."""
    request_id = request.scope.get("state", {}).get("request_id", "")
    what = f"{request.method} {escape_controls(request.url.path)}"
    dependency = unavailable_dependency(exc)
    if dependency is not None:
        # The database or Redis is down: 503 + Retry-After, one warning a minute (keel.outages).
        log_outage(dependency, exc, what)
        return Response(
            {
                "status_code": HTTP_503_SERVICE_UNAVAILABLE,
                "detail": f"{dependency} unavailable; retry shortly",
                "request_id": request_id,
            },
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(OUTAGE_RETRY_AFTER)},
            media_type=MediaType.JSON,
        )
    # Logged once per distinct cause (with the request id), not once per request: a flood of
    # one bad request must not become a flood of tracebacks.
    unhandled_errors.record(exc, what)
    body: dict[str, Any] = {
        "status_code": HTTP_500_INTERNAL_SERVER_ERROR,
        "detail": "Internal Server Error",
        "request_id": request_id,
    }
    if request.app.debug:
        body["error"] = redact(f"{type(exc).__name__}: {exc}")
    return Response(body, status_code=HTTP_500_INTERNAL_SERVER_ERROR, media_type=MediaType.JSON)


def _domain_handler(status: ErrorStatus) -> ExceptionHandler:
    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
        # An error may carry headers of its own (e.g. a Retry-After it computed).
        headers = {**status.headers, **getattr(exc, "headers", {})}
        error = HTTPException(status_code=status.status_code, detail=str(exc), headers=headers)
        return http_error_response(request, error)

    return handle


def exception_handlers(
    errors: Mapping[type[Exception], ErrorStatus],
) -> dict[type[Exception], ExceptionHandler]:
    """Litestar's ``exception_handlers`` for the app (it picks the closest class in the MRO)."""
    handlers: dict[type[Exception], ExceptionHandler] = {
        error: _domain_handler(status) for error, status in errors.items()
    }
    handlers[HTTPException] = http_error_response
    handlers[Exception] = internal_error_response
    return handlers
