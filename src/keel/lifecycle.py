"""Resources that start in order and stop in reverse: the API lifespan and the worker share this.

A resource is anything with a start and a stop (a DB engine, a Redis pool, the node-id lease,
the broker). :class:`ResourceStack` starts them one by one, logs each start with its timing,
and on a failure stops what already started and raises :class:`StartupError` naming the
resource, so the process can exit with one clear line.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from litestar.datastructures import State
from loguru import logger


@runtime_checkable
class Resource(Protocol):
    """A long-lived dependency. ``start`` may publish objects on ``state`` for handlers."""

    name: str

    async def start(self, state: State) -> None: ...

    async def stop(self) -> None: ...


class StartupError(Exception):
    """A resource failed to start. ``str()`` is the one line an operator reads."""

    def __init__(self, resource: str, cause: BaseException) -> None:
        self.resource = resource
        self.cause = cause
        super().__init__(f"startup failed: {resource}: {describe_exception(cause)}")


def describe_exception(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ResourceStack:
    def __init__(self, resources: Sequence[Resource]) -> None:
        self._resources = list(resources)
        self._started: list[Resource] = []

    @property
    def names(self) -> list[str]:
        return [resource.name for resource in self._resources]

    async def start(self, state: State) -> None:
        for resource in self._resources:
            began = time.perf_counter()
            try:
                await resource.start(state)
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
