"""Resources that start in dependency order and stop in reverse: the API and the worker share this.

A resource is anything with a start and a stop (a DB engine, a Redis pool, the node-id lease,
the broker). It names the resources it needs in ``depends_on`` (they are passed to its
constructor, so the dependency is visible in the type too). :class:`ResourceStack` starts each
one after its dependencies, logs each start with its timing, and on a failure stops what
already started and raises :class:`StartupError` naming the resource, so the process can report
one clear line.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from loguru import logger

from keel.resilience import describe_exception


@runtime_checkable
class Resource(Protocol):
    """A long-lived dependency with typed attributes for whoever holds it."""

    name: str
    # The resources that must be started before this one (and stopped after it).
    depends_on: Sequence[Resource]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class StartupError(Exception):
    """A resource failed to start. ``str()`` is the one line an operator reads."""

    def __init__(self, resource: str, cause: BaseException) -> None:
        self.resource = resource
        self.cause = cause
        super().__init__(f"startup failed: {resource}: {describe_exception(cause)}")


def start_order(resources: Sequence[Resource]) -> list[Resource]:
    """Every resource after its dependencies (pulled in when not listed), else in list order."""
    ordered: list[Resource] = []
    placed: set[int] = set()
    visiting: list[Resource] = []

    def place(resource: Resource) -> None:
        if id(resource) in placed:
            return
        if any(resource is seen for seen in visiting):
            cycle = " -> ".join(r.name for r in [*visiting, resource])
            raise ValueError(f"resources depend on each other in a circle: {cycle}")
        visiting.append(resource)
        for needed in getattr(resource, "depends_on", ()):
            place(needed)
        visiting.pop()
        placed.add(id(resource))
        ordered.append(resource)

    for resource in resources:
        place(resource)
    return ordered


class ResourceStack:
    def __init__(self, resources: Sequence[Resource]) -> None:
        self._resources = start_order(resources)
        self._started: list[Resource] = []

    @property
    def names(self) -> list[str]:
        return [resource.name for resource in self._resources]

    async def start(self) -> None:
        for resource in self._resources:
            began = time.perf_counter()
            try:
                await resource.start()
            except BaseException as exc:
                await self.stop()
                if isinstance(exc, StartupError):
                    raise
                raise StartupError(resource.name, exc) from exc
            self._started.append(resource)
            elapsed_ms = (time.perf_counter() - began) * 1000
            logger.bind(resource=resource.name, elapsed_ms=round(elapsed_ms, 1)).info(
                "started {} in {:.1f} ms", resource.name, elapsed_ms
            )

    async def stop(self) -> None:
        while self._started:
            resource = self._started.pop()
            began = time.perf_counter()
            try:
                await resource.stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                logger.bind(resource=resource.name).warning(
                    "stopping {} failed: {}", resource.name, describe_exception(exc)
                )
                continue
            elapsed_ms = (time.perf_counter() - began) * 1000
            logger.bind(resource=resource.name, elapsed_ms=round(elapsed_ms, 1)).info(
                "stopped {} in {:.1f} ms", resource.name, elapsed_ms
            )


def startup_failure(exc: BaseException) -> StartupError | None:
    """The :class:`StartupError` in ``exc``, also inside the exception group Litestar's
    lifespan (an anyio task group) wraps it in."""
    if isinstance(exc, StartupError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = startup_failure(inner)
            if found is not None:
                return found
    return None
