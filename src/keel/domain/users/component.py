"""The auth feature as a component: routes, the authentication middleware, security headers.

The API-key directory reads keys through the runtime's one session maker."""

from __future__ import annotations

from keel.auth.headers import SecurityHeaders
from keel.auth.middleware import authentication_middleware
from keel.auth.runtime import build_runtime
from keel.components import Component
from keel.domain.users.controllers import api_router
from keel.domain.users.directory import DbApiKeyDirectory
from keel.runtime import Runtime


def component(runtime: Runtime) -> Component:
    settings = runtime.settings
    auth = build_runtime(settings)
    api_keys = DbApiKeyDirectory(
        runtime.database.sessions, auth.cipher, settings.auth.api_key_cache_seconds
    )
    return Component(
        name="auth",
        route_handlers=[api_router(auth)],
        middleware=[authentication_middleware(auth, api_keys)],
        response_headers=[SecurityHeaders(hsts=settings.http.behind_tls)],
    )
