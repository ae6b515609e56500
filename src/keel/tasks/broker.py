"""The broker: Redis streams (one stream per queue, one consumer group), or in-process.

:class:`KeelStreamBroker` is Keel's own broker on taskiq's public :class:`~taskiq.AsyncBroker`
surface (``startup``, ``shutdown``, ``kick``, ``listen``, ``AckableMessage``): the stream
layout and ack semantics are those of taskiq-redis' ``RedisStreamBroker`` (``XADD`` with a
``data`` field, ``XREADGROUP``, ``XACK`` after the job's outcome is stored), and everything
production needs is implemented here, not patched into upstream's private methods:

- it reconnects (with backoff) when Redis restarts, and re-creates the consumer group when the
  restart lost it (``NOGROUP``);
- it looks for messages a dead worker left unacknowledged every ``WORKER_RECLAIM_INTERVAL``
  seconds, also while idle (upstream only does so after a read returned new messages), under a
  lock that expires after ``WORKER_UNACK_LOCK_TIMEOUT`` so a killed worker cannot block it;
- its group starts at the beginning of the stream (id ``0``), so a group re-created after a
  restart still sees messages added meanwhile (duplicates are harmless: execution is
  idempotent);
- kicks and acks arriving together share one round trip (``keel.batching``).

Results go to taskiq-redis' ``RedisAsyncResultBackend`` (results finishing together share one
pipelined write). ``tests/unit/tasks/test_taskiq_surface.py`` pins the taskiq and taskiq-redis
versions this relies on and checks the surface used.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any

from loguru import logger
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AckableMessage, AsyncBroker, BrokerMessage, InMemoryBroker
from taskiq.result import TaskiqResult
from taskiq_redis import RedisAsyncResultBackend

from keel.batching import Batcher
from keel.config import Settings
from keel.metrics.hooks import redis_reconnect
from keel.redis_conn import connection_options, redis_url
from keel.resilience import backoff

CONSUMER_GROUP = "keel-workers"
RUN_JOB_TASK = "keel.run_job"


def stream_name(settings: Settings, queue: str) -> str:
    return f"{settings.redis.key_prefix}:jobs:{queue}"


class KeelStreamBroker(AsyncBroker):
    def __init__(
        self,
        url: str,
        streams: Sequence[str],
        *,
        reclaim_interval: float,
        idle_timeout: int,
        unacknowledged_lock_timeout: float,
        maxlen: int | None,
        xread_count: int,
        xread_block: int,
        unacknowledged_batch_size: int = 100,
        approximate: bool = True,
        **connection_kwargs: Any,
    ) -> None:
        super().__init__()
        # Unbounded (max_connections=None), blocking pool: as taskiq-redis' brokers build it.
        self.connection_pool = BlockingConnectionPool.from_url(
            url, max_connections=None, **connection_kwargs
        )
        self.streams = list(streams)
        self.queue_name = self.streams[0]  # where a message without a queue label goes
        self.consumer_name = "0"  # keel.tasks.worker names each worker process's consumer
        self.reclaim_interval = reclaim_interval
        self.idle_timeout = idle_timeout  # ms a message stays pending before it is reclaimed
        self.unacknowledged_lock_timeout = unacknowledged_lock_timeout
        self.unacknowledged_batch_size = unacknowledged_batch_size
        self.maxlen = maxlen
        self.approximate = approximate
        self.count = xread_count
        self.block = xread_block
        # One client over the pool for kicks and acks.
        self._client: Redis | None = None
        self._acks: Batcher[tuple[Any, Any], None] = Batcher(self._ack_batch)
        self._kicks: Batcher[tuple[Any, bytes], None] = Batcher(self._kick_batch)

    @property
    def client(self) -> Redis:
        if self._client is None:
            self._client = Redis(connection_pool=self.connection_pool)
        return self._client

    async def kick(self, message: BrokerMessage) -> None:
        stream = message.labels.get("queue_name") or self.queue_name
        # Messages published together share one pipelined round trip.
        await self._kicks.submit((stream, message.message))

    async def _kick_batch(self, messages: Sequence[tuple[Any, bytes]]) -> list[None]:
        if len(messages) == 1:
            stream, data = messages[0]
            await self.client.xadd(
                stream, {b"data": data}, maxlen=self.maxlen, approximate=self.approximate
            )
            return [None]
        pipe = self.client.pipeline(transaction=False)
        for stream, data in messages:
            pipe.xadd(stream, {b"data": data}, maxlen=self.maxlen, approximate=self.approximate)
        await pipe.execute()
        return [None] * len(messages)

    async def _ack_batch(self, messages: Sequence[tuple[Any, Any]]) -> list[None]:
        by_stream: dict[Any, list[Any]] = {}
        for stream, msg_id in messages:
            by_stream.setdefault(stream, []).append(msg_id)
        for stream, ids in by_stream.items():
            await self.client.xack(stream, CONSUMER_GROUP, *ids)
        return [None] * len(messages)

    def _acker(self, stream: Any, msg_id: Any) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            # Acks arriving together share one XACK (group commit, see keel.batching).
            await self._acks.submit((stream, msg_id))

        return ack

    async def hand_back(self) -> int:
        """Make this consumer's unfinished messages reclaimable now (graceful stop).

        Messages fetched but never started (and jobs cut off by the shutdown budget) stay
        pending for this consumer; marking them idle for ``idle_timeout`` lets the next reclaim
        of any other worker take them at once instead of after the timeout. A consumer with
        nothing pending is removed from the group.
        """
        handed = 0
        for stream in self.streams:
            pending = await self.client.xpending_range(
                stream,
                CONSUMER_GROUP,
                min="-",
                max="+",
                count=10_000,
                consumername=self.consumer_name,
            )
            ids: list[Any] = [entry["message_id"] for entry in pending]
            if ids:
                await self.client.xclaim(
                    stream,
                    CONSUMER_GROUP,
                    self.consumer_name,
                    min_idle_time=0,
                    message_ids=ids,
                    idle=self.idle_timeout,
                    justid=True,
                )
                handed += len(ids)
            else:
                await self.client.xgroup_delconsumer(stream, CONSUMER_GROUP, self.consumer_name)
        return handed

    async def startup(self) -> None:
        await super().startup()
        await self.declare_consumer_group()

    async def shutdown(self) -> None:
        if self.is_worker_process:
            try:
                handed = await self.hand_back()
            except (RedisConnectionError, RedisTimeoutError, OSError, ResponseError) as exc:
                logger.warning("could not hand back pending messages: {}", exc)
            else:
                if handed:
                    logger.info("handed back {} unfinished message(s) for reclaiming", handed)
        await super().shutdown()
        await self.connection_pool.disconnect()

    async def declare_consumer_group(self) -> None:
        """The consumer group on every stream (streams created if missing), from id 0."""
        async with Redis(connection_pool=self.connection_pool) as conn:
            for stream in self.streams:
                try:
                    await conn.xgroup_create(stream, CONSUMER_GROUP, id="0", mkstream=True)
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise

    def _message(self, stream: Any, msg_id: Any, fields: Any) -> AckableMessage:
        return AckableMessage(data=fields[b"data"], ack=self._acker(stream, msg_id))

    async def _reclaim(self, conn: Redis, stream: str) -> list[AckableMessage]:
        """Take over messages idle longer than ``idle_timeout`` (their worker died)."""
        lock = conn.lock(
            f"{stream}:autoclaim-lock",
            timeout=self.unacknowledged_lock_timeout,
            blocking=False,
        )
        if not await lock.acquire():
            return []
        try:
            reply = await conn.xautoclaim(
                stream,
                CONSUMER_GROUP,
                self.consumer_name,
                min_idle_time=self.idle_timeout,
                start_id="0-0",
                count=self.unacknowledged_batch_size,
            )
        finally:
            # Expired meanwhile (a slow claim): nothing to release.
            with contextlib.suppress(Exception):
                await lock.release()
        claimed = reply[1] if len(reply) > 1 else []
        messages = []
        for msg_id, fields in claimed:
            if not fields:  # trimmed from the stream: nothing left to run
                await conn.xack(stream, CONSUMER_GROUP, msg_id)
                continue
            messages.append(self._message(stream, msg_id, fields))
        if messages:
            logger.warning("reclaimed {} unacknowledged message(s) from {}", len(messages), stream)
        return messages

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        streams: dict[Any, Any] = {stream: ">" for stream in self.streams}
        next_reclaim = 0.0
        failures = 0
        while True:
            try:
                async with Redis(connection_pool=self.connection_pool) as conn:
                    while True:
                        fetched: Any = await conn.xreadgroup(
                            CONSUMER_GROUP,
                            self.consumer_name,
                            streams,
                            block=self.block,
                            count=self.count,
                        )
                        if failures:
                            logger.info("broker connection restored")
                            failures = 0
                        for stream, entries in fetched or []:
                            for msg_id, fields in entries:
                                yield self._message(stream, msg_id, fields)
                        if time.monotonic() >= next_reclaim:
                            next_reclaim = time.monotonic() + self.reclaim_interval
                            for stream in self.streams:
                                for message in await self._reclaim(conn, stream):
                                    yield message
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                logger.warning("consumer group missing (Redis lost its data?); re-creating it")
                await self._redeclare()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                failures += 1
                redis_reconnect("broker")
                delay = backoff(min(failures, 6) + 1, 0.1, 5.0, jitter=False)
                logger.warning("broker connection lost ({}); retrying in {:.1f}s", exc, delay)
                await asyncio.sleep(delay)
                await self._redeclare()

    async def _redeclare(self) -> None:
        # Still down: the next read fails and we wait again.
        with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
            await self.declare_consumer_group()


class KeelResultBackend(RedisAsyncResultBackend[Any]):
    """Taskiq results with a TTL; results finishing together share one pipelined write.

    Only ``set_result`` (public) is replaced; the key is ``<prefix>:<task id>``, the name
    upstream's ``get_result`` reads (a unit test writes here and reads it back through it).
    """

    def __init__(self, url: str, *, prefix: str, result_ex_time: int, **kwargs: Any) -> None:
        super().__init__(url, prefix_str=prefix, result_ex_time=result_ex_time, **kwargs)
        self.prefix = prefix
        self._client = Redis(connection_pool=self.redis_pool)
        self._writes: Batcher[tuple[str, bytes], None] = Batcher(self._write_batch)

    def result_key(self, task_id: str) -> str:
        return f"{self.prefix}:{task_id}"

    async def _write_batch(self, items: Sequence[tuple[str, bytes]]) -> list[None]:
        pipe = self._client.pipeline(transaction=False)
        for name, value in items:
            pipe.set(name, value, ex=self.result_ex_time)
        await pipe.execute()
        return [None] * len(items)

    async def set_result(self, task_id: str, result: TaskiqResult[Any]) -> None:
        value = self.serializer.dumpb(result.model_dump(mode="json"))
        await self._writes.submit((self.result_key(task_id), value))


def build_broker(settings: Settings, queues: Sequence[str]) -> AsyncBroker:
    """The broker for these queues (the API kicks to any queue by label)."""
    if settings.redis.backend == "memory":
        return InMemoryBroker(max_async_tasks=settings.worker.max_async_tasks)
    worker = settings.worker
    url = redis_url(settings)
    broker = KeelStreamBroker(
        url,
        [stream_name(settings, queue) for queue in queues],
        reclaim_interval=worker.reclaim_interval,
        idle_timeout=int(worker.idle_timeout * 1000),
        unacknowledged_lock_timeout=worker.unacknowledged_lock_timeout,
        maxlen=worker.stream_maxlen,
        xread_count=worker.fetch_count,
        xread_block=1000,
        **connection_options(settings),
    )
    backend = KeelResultBackend(
        url,
        result_ex_time=worker.result_ttl,
        prefix=f"{settings.redis.key_prefix}:results",
        **connection_options(settings),
    )
    return broker.with_result_backend(backend)
