"""The worker's heartbeat in Redis, the writing side (:mod:`keel.heartbeats` reads them).

Refreshed every ``WORKER_HEARTBEAT_INTERVAL`` with what the worker serves, how busy it is and,
when it serves the gpu queue, its GPUs; deleted on a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
from collections.abc import Callable, Sequence

import msgspec
from loguru import logger

from keel.config import Settings
from keel.heartbeats import Heartbeat, heartbeat_key
from keel.lifecycle import Resource
from keel.redis_client import RedisResource
from keel.resilience import PeriodicTask


class HeartbeatResource:
    name = "heartbeat"

    def __init__(
        self,
        settings: Settings,
        redis: RedisResource | None,
        worker_id: str,
        queues: list[str],
        in_flight: Callable[[], int],
    ) -> None:
        self._settings = settings
        self._redis = redis
        self.depends_on: Sequence[Resource] = (redis,) if redis is not None else ()
        self.worker_id = worker_id
        self._queues = queues
        self._in_flight = in_flight
        self._started_at = dt.datetime.now(dt.UTC)
        self._with_gpu = "gpu" in queues
        self._loop = PeriodicTask(
            "heartbeat", self.beat, lambda: settings.worker.heartbeat_interval, "heartbeat failed"
        )

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
        await self._redis.client.set(
            heartbeat_key(self._settings, self.worker_id), document, px=ttl_ms
        )

    async def start(self) -> None:
        if self._redis is None:
            return  # REDIS_BACKEND=memory: nobody to tell
        try:
            await self.beat()
        except Exception as exc:  # noqa: BLE001 - keep starting; the loop retries
            logger.warning("first heartbeat failed: {}", exc)
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.client.delete(heartbeat_key(self._settings, self.worker_id))
