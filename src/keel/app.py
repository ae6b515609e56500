"""``create_app(settings)``: the Litestar application built from the components.

The lifespan starts every component's resources in order (one log line each, with timing) and
stops them in reverse. A resource that fails to start ends the process with one line naming it
and the cause; the traceback is logged only when DEBUG is on.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, MediaType, Request, Response
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE
from loguru import logger

from keel import __version__
from keel import middleware as request_context
from keel.components import Component, build_components
from keel.config import Settings, load
from keel.error_digest import unhandled_errors
from keel.health import HealthController
from keel.lifecycle import ResourceStack, StartupError
from keel.logging import configure_logging, escape_controls, flush_access_log, redact
from keel.openapi import complete as complete_openapi
from keel.outages import RETRY_AFTER_SECONDS as OUTAGE_RETRY_AFTER
from keel.outages import log_outage, unavailable_dependency
from keel.request_body import SafeJsonRequest, refuse_nul_in_query
from keel.server import die_with_parent, report_startup_failure
from keel.stores import build_store_registry

# Exit code of a process whose startup failed (distinct from crashes and config errors).
STARTUP_FAILED_EXIT = 3


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """A dependency down is a 503 (keel.outages); anything else is logged once per cause with
    the request id (keel.error_digest), and the client gets no internals (outside DEBUG)."""
    request_id = request.scope.get("state", {}).get("request_id", "")
    what = f"{request.method} {escape_controls(request.url.path)}"
    dependency = unavailable_dependency(exc)
    if dependency is not None:
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
    unhandled_errors.record(exc, what)
    body: dict[str, Any] = {
        "status_code": HTTP_500_INTERNAL_SERVER_ERROR,
        "detail": "Internal Server Error",
        "request_id": request_id,
    }
    if request.app.debug:
        body["error"] = redact(f"{type(exc).__name__}: {exc}")
    return Response(body, status_code=HTTP_500_INTERNAL_SERVER_ERROR, media_type=MediaType.JSON)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"status_code": exc.status_code, "detail": redact(str(exc.detail))}
    if exc.extra and (request.app.debug or exc.status_code < 500):
        body["extra"] = exc.extra
    return Response(
        body, status_code=exc.status_code, headers=exc.headers, media_type=MediaType.JSON
    )


def _lifespan(settings: Settings, stack: ResourceStack) -> Any:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        logger.bind(lifecycle=True).info(
            "starting {} {} (APP_ENV={}, resources: {})",
            settings.app.name,
            __version__,
            settings.app.env,
            ", ".join(stack.names) or "none",
        )
        try:
            await stack.start(app.state)
        except StartupError as exc:
            if settings.app.debug:
                logger.opt(exception=exc.cause).bind(lifecycle=True).error(str(exc))
            else:
                logger.bind(lifecycle=True).error(str(exc))
            await logger.complete()
            report_startup_failure(str(exc))
            os._exit(STARTUP_FAILED_EXIT)
        try:
            yield
        finally:
            logger.bind(lifecycle=True).info("shutting down")
            await stack.stop()
            flush_access_log()

    return lifespan


def create_app(settings: Settings, *, components: list[Component] | None = None) -> Litestar:
    components = build_components(settings) if components is None else components
    stack = ResourceStack([r for c in components for r in (*c.resources, *c.api_only_resources)])
    http = settings.http
    cors = (
        CORSConfig(
            allow_origins=http.cors_origins,
            allow_methods=http.cors_methods,  # type: ignore[arg-type]
            allow_headers=http.cors_headers,
            allow_credentials=http.cors_allow_credentials,
            expose_headers=["X-Request-ID"],
        )
        if http.cors_origins
        else None
    )
    openapi = (
        OpenAPIConfig(
            title=settings.app.name,
            version=__version__,
            render_plugins=[SwaggerRenderPlugin()],
            path="/docs",
        )
        if settings.app.debug
        else None
    )
    app = Litestar(
        route_handlers=[HealthController, *(h for c in components for h in c.route_handlers)],
        plugins=[p for c in components for p in c.plugins],
        middleware=[m for c in components for m in c.middleware],
        dependencies={k: v for c in components for k, v in c.dependencies.items()},
        lifespan=[_lifespan(settings, stack)],
        state=State(
            {
                "settings": settings,
                "readiness_checks": [check for c in components for check in c.readiness],
            }
        ),
        stores=build_store_registry(settings),
        cors_config=cors,
        # Probes (kubelet, Docker, a load balancer) send the pod or container address as Host.
        allowed_hosts=AllowedHostsConfig(allowed_hosts=http.allowed_hosts, exclude=["^/health/"])
        if http.allowed_hosts != ["*"]
        else None,
        openapi_config=openapi,
        request_max_body_size=http.max_body_bytes,
        request_class=SafeJsonRequest,
        before_request=refuse_nul_in_query,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
        debug=settings.app.debug,
        logging_config=None,
    )
    if openapi is not None:
        complete_openapi(app)  # the errors, security schemes and strict bodies (keel.openapi)
    # Request id, access log and response headers: one layer around everything (404s too).
    return request_context.install(
        app,
        access_log=http.access_log,
        response_headers=[h for c in components for h in c.response_headers],
    )


def app_factory() -> Litestar:
    """Entry point for Granian workers: settings from the environment, logging, the app."""
    die_with_parent()
    settings = load()
    configure_logging(settings, process="api")
    return create_app(settings)
