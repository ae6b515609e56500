"""Worker heartbeats in Redis, the reading side: who is alive, what it serves, its GPUs.

Key ``<prefix>:worker:<worker id>`` holds a JSON :class:`Heartbeat` and expires after
``WORKER_HEARTBEAT_TTL`` unless the worker refreshes it (``keel.tasks.heartbeat`` writes it).
A missing key means a dead (or hung) worker: the job runner takes over its jobs, ``keel
healthcheck worker`` fails, ``/api/gpus`` drops its GPUs. Below both the job domain and the
Taskiq transport, so either may read heartbeats without importing the other.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
from typing import Any

import msgspec
from redis.asyncio import Redis

from keel.config import Settings


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True):
    worker_id: str
    hostname: str
    pid: int
    queues: list[str]
    in_flight: int
    started_at: dt.datetime
    beat_at: dt.datetime
    gpu: Any | None = None  # keel.gpu.GpuSnapshot as JSON, when the worker has or serves GPUs


def key_prefix(settings: Settings) -> str:
    return f"{settings.redis.key_prefix}:worker:"


def heartbeat_key(settings: Settings, worker_id: str) -> str:
    return f"{key_prefix(settings)}{worker_id}"


def new_worker_id() -> str:
    # hostname first: `keel healthcheck worker` finds this host's workers by prefix.
    return f"{socket.gethostname()}.{os.getpid()}.{os.urandom(2).hex()}"


async def is_alive(redis: Redis, settings: Settings, worker_id: str) -> bool:
    return bool(await redis.exists(heartbeat_key(settings, worker_id)))


async def read_heartbeats(redis: Redis, settings: Settings, match: str = "*") -> list[Heartbeat]:
    keys = [key async for key in redis.scan_iter(match=f"{key_prefix(settings)}{match}", count=500)]
    if not keys:
        return []
    beats = []
    for raw in await redis.mget(keys):
        if raw is None:
            continue
        with contextlib.suppress(msgspec.ValidationError, msgspec.DecodeError):
            beats.append(msgspec.json.decode(raw, type=Heartbeat))
    return beats
