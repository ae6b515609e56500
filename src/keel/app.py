"""``create_app(settings)``: the Litestar application over the process's runtime and components.

The lifespan starts the runtime's and the components' resources in dependency order (one log
line each, with timing) and stops them in reverse. A resource that fails to start is logged as
one line naming it and the cause (the traceback only when DEBUG is on) and the lifespan raises
:class:`~keel.lifecycle.StartupError`: the app never ends its process, so it can be embedded and
tested in-process. Only the Granian entry point (:func:`app_factory`, through
:func:`keel.server.exit_on_startup_failure`) turns that into "stop the server, exit 3".
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from loguru import logger

from keel import __version__
from keel import middleware as request_context
from keel.api_docs import asset_router, openapi_config
from keel.components import Component, ReadinessCheck, build_components, provided
from keel.config import Settings, load
from keel.health import HealthController
from keel.http_errors import ErrorStatus, exception_handlers
from keel.lifecycle import ResourceStack, StartupError
from keel.logging import configure_logging, flush_access_log
from keel.openapi import complete as complete_openapi
from keel.redis_conn import make_client
from keel.request_body import SafeJsonRequest, refuse_nul_in_query
from keel.runtime import Runtime, build_runtime
from keel.server import ASGIApp, die_with_parent, exit_on_startup_failure
from keel.stores import build_store_registry
from keel.tasks.queue import BrokerQueue

# Exit code of a process whose startup failed (distinct from crashes and config errors).
STARTUP_FAILED_EXIT = 3


def _lifespan(settings: Settings, stack: ResourceStack, server_process: bool) -> Any:
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
            await stack.start()
        except StartupError as exc:
            # One line; the traceback only for whoever asked for debug logs (DEBUG=true is
            # the API's debug mode, on in `make run`, and a startup failure is no bug).
            if settings.log.level in ("DEBUG", "TRACE"):
                logger.opt(exception=exc.cause).bind(lifecycle=True).error(str(exc))
            else:
                logger.bind(lifecycle=True).error(str(exc))
            await logger.complete()
            raise
        if server_process:
            # Everything built so far (modules, the app, pools) lives as long as the process:
            # out of the collector's sight, full collections stop walking it. Measured (make
            # bench): GET /api/jobs/{id} p99 96 -> 9 ms under load.
            gc.freeze()
        try:
            yield
        finally:
            logger.bind(lifecycle=True).info("shutting down")
            await stack.stop()
            flush_access_log()

    return lifespan


def api_runtime(settings: Settings) -> Runtime:
    """The API process's runtime: its job queue owns a broker (publishing, or in-process)."""
    return build_runtime(settings, BrokerQueue)


def create_app(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    components: Sequence[Component] | None = None,
    server_process: bool = False,
) -> Litestar:
    """The app for ``settings``. Without ``components``: the runtime's (built from settings
    unless given) and every feature of :data:`keel.components.COMPONENT_FACTORIES`.
    ``server_process``: the app runs in a Granian worker of `keel serve` (:func:`app_factory`):
    once started it ``gc.freeze()``s its heap (not in embedded apps, such as tests', whose
    garbage that would keep forever)."""
    if components is None:
        runtime = runtime or api_runtime(settings)
        components = build_components(runtime)
    resources = [
        *(runtime.resources if runtime else ()),
        *(r for c in components for r in c.resources),
    ]
    stack = ResourceStack(resources)
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
    # The docs, and the Swagger UI assets they load (served from a package, no CDN).
    openapi = openapi_config(settings.app.name) if settings.app.debug else None
    docs_assets = [asset_router()] if settings.app.debug else []
    if runtime is not None:
        redis = runtime.redis.client if runtime.redis is not None else None
    else:  # embedded with hand-picked components: stores of their own
        redis = make_client(settings) if settings.redis.backend == "redis" else None
    readiness: list[ReadinessCheck] = [check for c in components for check in c.readiness]
    errors: Mapping[type[Exception], ErrorStatus] = {
        error: status for c in components for error, status in c.errors.items()
    }
    app = Litestar(
        route_handlers=[
            HealthController,
            *docs_assets,
            *(h for c in components for h in c.route_handlers),
        ],
        plugins=[p for c in components for p in c.plugins],
        middleware=[m for c in components for m in c.middleware],
        dependencies={"readiness_checks": provided(readiness)},
        lifespan=[_lifespan(settings, stack, server_process)],
        stores=build_store_registry(settings.app.name, redis),
        cors_config=cors,
        openapi_config=openapi,
        request_max_body_size=http.max_body_bytes,
        request_class=SafeJsonRequest,
        before_request=refuse_nul_in_query,
        exception_handlers=exception_handlers(errors),  # type: ignore[arg-type]
        debug=settings.app.debug,
        logging_config=None,
    )
    if openapi is not None:
        complete_openapi(app)  # the errors, security schemes and strict bodies (keel.openapi)
    # Request id, host check, access log and response headers: one layer around everything
    # (404s too); ALLOWED_HOSTS is checked there (keel.host_check).
    return request_context.install(
        app,
        access_log=http.access_log,
        response_headers=[h for c in components for h in c.response_headers],
        observers=[o for c in components for o in c.response_observers],
        allowed_hosts=http.allowed_hosts,
    )


def app_factory() -> ASGIApp:
    """Entry point for Granian workers: settings from the environment, logging, the app; a
    failed startup stops the server and exits :data:`STARTUP_FAILED_EXIT`."""
    die_with_parent()
    settings = load()
    configure_logging(settings, process="api")
    return exit_on_startup_failure(create_app(settings, server_process=True), STARTUP_FAILED_EXIT)
