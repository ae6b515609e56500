"""The composition root of the HTTP surface: which features make up the API, built from the
process's :class:`~keel.runtime.Runtime`.

Each feature module exposes ``component(runtime) -> Component``; :data:`COMPONENT_FACTORIES`
lists them. A component contributes routes, readiness checks, plugins, middleware, response
headers, the HTTP status of its domain errors, and any resources of its own (started after
the runtime's, in dependency order). The resources the API and the worker share live on the
runtime itself, so both processes always run the same ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from litestar.di import Provide

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler, Middleware

    from keel.http_errors import ErrorStatus
    from keel.lifecycle import Resource
    from keel.middleware import ResponseHeaders, ResponseObserver
    from keel.runtime import Runtime


def provided(value: object) -> Provide:
    """A Litestar dependency that hands out this one object (a service built at app build)."""
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)


# A readiness check raises (any exception, message = the reason) when its dependency is not ok.
CheckFunc = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class ReadinessCheck:
    name: str
    # Must not block for long (a timeout wraps it).
    check: CheckFunc
    timeout: float = 2.0


@dataclass(frozen=True)
class Component:
    name: str
    resources: Sequence[Resource] = ()
    route_handlers: Sequence[ControllerRouterHandler] = ()
    readiness: Sequence[ReadinessCheck] = ()
    plugins: Sequence[Any] = ()
    middleware: Sequence[Middleware] = ()
    # Headers added to every HTTP response (see keel.middleware.ResponseHeaders).
    response_headers: Sequence[ResponseHeaders] = ()
    # Domain exception -> HTTP status (keel.http_errors: the one exception-to-HTTP mapping).
    errors: Mapping[type[Exception], ErrorStatus] = field(default_factory=dict)
    # Told of every HTTP request's start, status and duration (metrics; see keel.middleware).
    response_observers: Sequence[ResponseObserver] = ()


# "module:function" entries; features append theirs here.
COMPONENT_FACTORIES: list[str] = [
    "keel.db.component:component",
    "keel.redis_client:component",
    "keel.tasks.queue:component",
    "keel.domain.jobs.component:component",
    "keel.gpu.routes:component",
    # auth: routes, authentication middleware, security headers (no resources of its own).
    "keel.domain.users.component:component",
    # HTTP metrics (every response, 404s too) and DB pool gauges (after the database).
    "keel.metrics.component:component",
]


def build_components(runtime: Runtime) -> list[Component]:
    components: list[Component] = []
    for entry in COMPONENT_FACTORIES:
        module_name, _, func_name = entry.partition(":")
        factory = getattr(importlib.import_module(module_name), func_name or "component")
        components.append(factory(runtime))
    return components
