"""The auth feature as a component: routes, the authentication middleware, security headers."""

from __future__ import annotations

from keel.auth.headers import SecurityHeaders
from keel.auth.middleware import authentication_middleware
from keel.auth.runtime import build_runtime
from keel.components import Component
from keel.config import Settings
from keel.domain.users.controllers import api_router
from keel.domain.users.directory import DbApiKeyDirectory


def component(settings: Settings) -> Component:
    runtime = build_runtime(settings)
    return Component(
        name="auth",
        route_handlers=[api_router(runtime)],
        middleware=[
            authentication_middleware(
                runtime, DbApiKeyDirectory(runtime.cipher, settings.auth.api_key_cache_seconds)
            )
        ],
        response_headers=[SecurityHeaders(hsts=settings.http.behind_tls)],
    )
