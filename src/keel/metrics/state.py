"""Gauges read at scrape time from Redis and the database (the api's exporter serves them).

Workers alive and their heartbeat age per queue, GPU readings from the heartbeats, stream lag
and pending per queue, the oldest queued job's age, and whether Redis and the database answer.
They come from the api so that they keep answering while every worker is down.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

from loguru import logger
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from keel.config import Settings

SCRAPE_TIMEOUT_S = 5.0


class _Loop:
    """A private event loop in a thread: the HTTP server thread asks it for readings."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="metrics", daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


class StateCollector(Collector):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loop = _Loop()
        self._redis: Any = None
        self._engine: Any = None

    async def _clients(self) -> tuple[Any, Any]:
        if self._redis is None and self.settings.redis.backend == "redis":
            from keel.redis_conn import make_client

            self._redis = make_client(self.settings)
        if self._engine is None:
            from keel.db.engine import sqlalchemy_config

            # No pool (one connection per scrape): a scrape every 15 s needs none.
            self._engine = sqlalchemy_config(self.settings, one_shot=True).get_engine()
        return self._redis, self._engine

    async def _read(self) -> list[GaugeMetricFamily]:
        redis, engine = await self._clients()
        families: list[GaugeMetricFamily] = []
        up = GaugeMetricFamily(
            "keel_dependency_up",
            "1 when the dependency answered this scrape",
            labels=["dependency"],
        )
        families.append(up)
        if redis is not None:
            try:
                families.extend(await _redis_families(redis, self.settings))
                up.add_metric(["redis"], 1)
            except Exception as exc:  # noqa: BLE001 - a down Redis is a reading, not an error
                logger.debug("metrics: Redis unreadable: {}", exc)
                up.add_metric(["redis"], 0)
        try:
            families.append(await _oldest_queued(engine))
            up.add_metric(["database"], 1)
        except Exception as exc:  # noqa: BLE001
            logger.debug("metrics: database unreadable: {}", exc)
            up.add_metric(["database"], 0)
        return families

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            yield from self._loop.run(self._read(), SCRAPE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - never break the scrape of the other metrics
            logger.warning("metrics: reading queue and worker state failed: {}", exc)


async def _redis_families(redis: Any, settings: Settings) -> list[GaugeMetricFamily]:
    from keel.domain.jobs.kinds import QUEUES
    from keel.heartbeats import read_heartbeats
    from keel.tasks.broker import CONSUMER_GROUP, stream_name

    alive = GaugeMetricFamily(
        "keel_workers_alive", "Workers with a live heartbeat", labels=["queue"]
    )
    age = GaugeMetricFamily(
        "keel_worker_heartbeat_age_seconds",
        "Age of the oldest live heartbeat on the queue",
        labels=["queue"],
    )
    length = GaugeMetricFamily(
        "keel_queue_length", "Messages not yet delivered to any worker", labels=["queue"]
    )
    pending = GaugeMetricFamily(
        "keel_queue_pending", "Messages delivered and not yet acknowledged", labels=["queue"]
    )
    beats = await read_heartbeats(redis, settings)
    now = dt.datetime.now(dt.UTC)
    for queue in QUEUES:
        serving = [b for b in beats if queue in b.queues]
        alive.add_metric([queue], len(serving))
        if serving:
            age.add_metric([queue], max((now - b.beat_at).total_seconds() for b in serving))
        lag, unacked = await _stream_state(redis, stream_name(settings, queue), CONSUMER_GROUP)
        length.add_metric([queue], lag)
        pending.add_metric([queue], unacked)
    return [alive, age, length, pending, *_gpu_families(beats)]


async def _stream_state(redis: Any, stream: str, group: str) -> tuple[float, float]:
    from redis.exceptions import ResponseError

    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # the stream does not exist yet: nothing queued
        return 0.0, 0.0
    for entry in groups:
        name = entry["name"].decode() if isinstance(entry["name"], bytes) else entry["name"]
        if name == group:
            lag = entry.get("lag")
            return float(lag if lag is not None else 0), float(entry.get("pending", 0))
    # No group yet: every message in the stream is waiting.
    return float(await redis.xlen(stream)), 0.0


def _gpu_families(beats: list[Any]) -> list[GaugeMetricFamily]:
    labels = ["hostname", "gpu", "name"]
    util = GaugeMetricFamily("keel_gpu_utilization_percent", "GPU utilisation", labels=labels)
    used = GaugeMetricFamily("keel_gpu_memory_used_bytes", "GPU memory in use", labels=labels)
    total = GaugeMetricFamily("keel_gpu_memory_total_bytes", "GPU memory", labels=labels)
    temp = GaugeMetricFamily("keel_gpu_temperature_celsius", "GPU temperature", labels=labels)
    seen: set[tuple[str, str]] = set()
    for beat in beats:
        snapshot = beat.gpu if isinstance(beat.gpu, dict) else None
        for gpu in (snapshot or {}).get("gpus") or []:
            key = (beat.hostname, str(gpu.get("index")))
            if key in seen or not gpu.get("ok"):
                continue  # two workers on one host report the same GPUs
            seen.add(key)
            values = [*key, str(gpu.get("name") or "")]
            for family, field, scale in (
                (util, "utilization_percent", 1),
                (used, "memory_used_mib", 1 << 20),
                (total, "memory_total_mib", 1 << 20),
                (temp, "temperature_c", 1),
            ):
                if gpu.get(field) is not None:
                    family.add_metric(values, float(gpu[field]) * scale)
    return [util, used, total, temp]


async def _oldest_queued(engine: Any) -> GaugeMetricFamily:
    from sqlalchemy import func, or_, select

    from keel.domain.jobs.models import Job, JobStatus

    now = dt.datetime.now(dt.UTC)
    due = func.min(func.coalesce(Job.run_after, Job.created_at), type_=Job.created_at.type)
    query = (
        select(Job.queue, due)
        .where(
            Job.status == JobStatus.QUEUED.value, or_(Job.run_after.is_(None), Job.run_after <= now)
        )
        .group_by(Job.queue)
    )
    family = GaugeMetricFamily(
        "keel_queue_oldest_age_seconds",
        "How long the oldest due queued job has waited",
        labels=["queue"],
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    from keel.domain.jobs.kinds import QUEUES

    oldest = {queue: when for queue, when in rows}
    for queue in QUEUES:
        when = oldest.get(queue)
        family.add_metric([queue], max(0.0, (now - when).total_seconds()) if when else 0.0)
    return family
