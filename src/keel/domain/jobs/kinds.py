"""The job-kind registry: what each kind accepts (a msgspec struct), where it runs, what it does.

A kind's ``run(payload, ctx)`` returns a JSON-serialisable result or raises:
:class:`RetryableJobError` (retried with backoff up to the attempt limit), :class:`JobFailedError`
(failed at once, with its message as the job's error). Other exceptions fail the job, except
timeouts and connection errors, which are retried.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from keel.config import Settings

QUEUES = ("default", "gpu")


class RetryableJobError(Exception):
    """A failure that may pass on another attempt (a busy dependency, a timeout)."""


class JobFailedError(Exception):
    """A failure that another attempt cannot fix; the message becomes the job's error."""


class UnknownKindError(LookupError):
    pass


class InvalidPayloadError(ValueError):
    pass


Effect = Callable[["AsyncConnection"], Awaitable[None]]


@dataclass
class JobContext:
    job_id: int
    attempt: int
    worker_id: str
    settings: Settings
    # Database writes that must happen exactly once: run in the transaction that records the
    # job's success, so a redelivered job never repeats them.
    effects: list[Effect] = field(default_factory=list)

    def on_commit(self, effect: Effect) -> None:
        self.effects.append(effect)


@dataclass(frozen=True)
class JobKind:
    name: str
    payload_type: type[msgspec.Struct] | None  # None: any JSON object
    run: Callable[[Any, JobContext], Awaitable[Any]]
    queue: str = "default"

    def parse(self, payload: dict[str, Any]) -> Any:
        if self.payload_type is None:
            return payload
        try:
            return msgspec.convert(payload, self.payload_type)
        except msgspec.ValidationError as exc:
            raise InvalidPayloadError(f"payload for kind {self.name!r}: {exc}") from exc


_REGISTRY: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    if kind.queue not in QUEUES:
        raise ValueError(f"kind {kind.name!r}: queue {kind.queue!r} is not one of {QUEUES}")
    _REGISTRY[kind.name] = kind
    return kind


def get_kind(name: str) -> JobKind:
    kind = _REGISTRY.get(name)
    if kind is None:
        raise UnknownKindError(f"unknown job kind {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return kind


def kinds() -> dict[str, JobKind]:
    return dict(_REGISTRY)


# --- built-in kinds -------------------------------------------------------------------------


async def _echo(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    return payload


class SleepPayload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)]
    # Tests: fail with a retryable error on the first N attempts.
    fail_attempts: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0


async def _sleep(payload: SleepPayload, ctx: JobContext) -> dict[str, Any]:
    if ctx.attempt <= payload.fail_attempts:
        raise RetryableJobError(f"planned failure on attempt {ctx.attempt}")
    await asyncio.sleep(payload.seconds)
    return {"slept": payload.seconds}


class ChecksumPayload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    mebibytes: Annotated[int, msgspec.Meta(ge=1, le=4096)]


_MIB = 1 << 20
# 1 MiB of fixed pseudo-random bytes: every worker computes the same digest.
_BLOCK = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(_MIB // 32))


def checksum_bytes(mebibytes: int) -> str:
    """SHA-256 over ``mebibytes`` MiB of deterministic bytes (block i = index || fixed MiB)."""
    digest = hashlib.sha256()
    for index in range(mebibytes):
        digest.update(index.to_bytes(8, "big"))
        digest.update(_BLOCK)
    return digest.hexdigest()


async def _checksum(payload: ChecksumPayload, ctx: JobContext) -> dict[str, Any]:
    # hashlib releases the GIL on large buffers: a thread keeps the event loop responsive.
    hexdigest = await asyncio.to_thread(checksum_bytes, payload.mebibytes)
    return {"sha256": hexdigest, "mebibytes": payload.mebibytes}


class GpuProbePayload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


async def _gpu_probe(payload: GpuProbePayload, ctx: JobContext) -> Any:
    from keel.gpu import NO_GPU_MESSAGE, snapshot

    taken = await asyncio.to_thread(snapshot, ctx.settings)
    if not taken.has_usable_gpu:  # no driver, no device, or every device lost/failing
        reason = f" ({taken.reason})" if taken.reason else ""
        raise JobFailedError(f"{NO_GPU_MESSAGE} on worker {ctx.worker_id}{reason}")
    return msgspec.to_builtins(taken)


register(JobKind("echo", None, _echo))
register(JobKind("sleep", SleepPayload, _sleep))
register(JobKind("checksum", ChecksumPayload, _checksum))
register(JobKind("gpu.probe", GpuProbePayload, _gpu_probe, queue="gpu"))
