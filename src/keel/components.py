"""The composition root: which features make up the service, built from settings.

Each feature module exposes ``component(settings) -> Component``; :data:`COMPONENT_FACTORIES`
lists them in start order (a feature's resources start after those of the features above it,
and stop before them). Both the API (:func:`keel.app.create_app`) and the worker use this list,
so the two processes always run the same resources.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler, Middleware

    from keel.config import Settings
    from keel.lifecycle import Resource
    from keel.middleware import ResponseHeaders, ResponseObserver

# A readiness check raises (any exception, message = the reason) when its dependency is not ok.
CheckFunc = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True)
class ReadinessCheck:
    name: str
    # Called with the application State; must not block for long (a timeout wraps it).
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
    dependencies: Mapping[str, Any] = field(default_factory=dict)
    # Headers added to every HTTP response (see keel.middleware.ResponseHeaders).
    response_headers: Sequence[ResponseHeaders] = ()
    # Told of every HTTP request's start, status and duration (metrics; see keel.middleware).
    response_observers: Sequence[ResponseObserver] = ()
    # Only the API process needs routes; the worker takes resources only.
    api_only_resources: Sequence[Resource] = ()


# "module:function" entries; features append theirs here (order = start order).
COMPONENT_FACTORIES: list[str] = [
    "keel.db.component:component",
    "keel.redis_client:component",
    "keel.ids:component",
    "keel.tasks.component:component",
    "keel.domain.jobs.component:component",
    # auth: routes, authentication middleware, security headers (no resources of its own).
    "keel.domain.users.component:component",
    # HTTP metrics (every response, 404s too) and DB pool gauges (after the database).
    "keel.metrics.component:component",
]


def build_components(settings: Settings) -> list[Component]:
    components: list[Component] = []
    for entry in COMPONENT_FACTORIES:
        module_name, _, func_name = entry.partition(":")
        factory = getattr(importlib.import_module(module_name), func_name or "component")
        components.append(factory(settings))
    return components
