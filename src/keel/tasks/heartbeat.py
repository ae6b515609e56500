"""Worker heartbeats in Redis: who is alive, what it serves, how busy it is, its GPUs.

Key ``<prefix>:worker:<worker id>`` holds a JSON document and expires after
``WORKER_HEARTBEAT_TTL`` unless refreshed every ``WORKER_HEARTBEAT_INTERVAL``. A missing key
means a dead (or hung) worker: the runner takes over its jobs, ``keel healthcheck worker``
fails, ``/api/gpus`` drops its GPUs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from loguru import logger
from redis.asyncio import Redis

from keel.config import Settings

if TYPE_CHECKING:
    from litestar.datastructures import State


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


class HeartbeatResource:
    name = "heartbeat"

    def __init__(
        self,
        settings: Settings,
        worker_id: str,
        queues: list[str],
        in_flight: Callable[[], int],
    ) -> None:
        self._settings = settings
        self.worker_id = worker_id
        self._queues = queues
        self._in_flight = in_flight
        self._started_at = dt.datetime.now(dt.UTC)
        self._redis: Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._with_gpu = "gpu" in queues

    def _document(self) -> bytes:
        gpu = None
        if self._with_gpu:
            from keel.gpu import snapshot

            gpu = msgspec.to_builtins(snapshot(self._settings))
        beat = Heartbeat(
            worker_id=self.worker_id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            queues=self._queues,
            in_flight=self._in_flight(),
            started_at=self._started_at,
            beat_at=dt.datetime.now(dt.UTC),
            gpu=gpu,
        )
        return msgspec.json.encode(beat)

    async def beat(self) -> None:
        assert self._redis is not None
        document = await asyncio.to_thread(self._document) if self._with_gpu else self._document()
        ttl_ms = int(self._settings.worker.heartbeat_ttl * 1000)
        await self._redis.set(heartbeat_key(self._settings, self.worker_id), document, px=ttl_ms)

    async def _loop(self) -> None:
        interval = self._settings.worker.heartbeat_interval
        while True:
            await asyncio.sleep(interval)
            try:
                await self.beat()
            except Exception as exc:  # noqa: BLE001 - Redis hiccup: next beat retries
                logger.warning("heartbeat failed: {}", exc)

    async def start(self, state: State) -> None:
        self._redis = state.get("redis")
        if self._redis is None:
            return  # REDIS_BACKEND=memory: nobody to tell
        try:
            await self.beat()
        except Exception as exc:  # noqa: BLE001 - keep starting; the loop retries
            logger.warning("first heartbeat failed: {}", exc)
        self._task = asyncio.create_task(self._loop(), name="heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.delete(heartbeat_key(self._settings, self.worker_id))
