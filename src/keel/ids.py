"""Snowflake ids: 64-bit, time-ordered, unique across replicas.

Layout (most significant first): 1 bit zero, 41 bits milliseconds since ``IDS_EPOCH_MS``
(about 69 years), 10 bits node id, 12 bits sequence (4096 ids per millisecond per node).

The node id is leased in Redis (set-if-absent with a TTL, safe to retry; renewed by the
lifespan, released on shutdown), so two live replicas never share one. A replica that cannot
renew its lease in time stops issuing ids rather than risk a duplicate. ``REDIS_BACKEND=memory``
(one process) or an explicit ``IDS_NODE_ID`` uses a fixed node id. A clock that steps back by up
to ``IDS_MAX_CLOCK_SKEW_MS`` is waited out; a bigger step fails loudly.
"""

from __future__ import annotations

import contextlib
import random
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from loguru import logger

from keel.config import Settings
from keel.redis_conn import CLAIM_SCRIPT
from keel.resilience import PeriodicTask

if TYPE_CHECKING:  # types only: `keel users …` uses Snowflake without loading Redis's client
    from redis.asyncio import Redis

    from keel.lifecycle import Resource
    from keel.redis_client import RedisResource

TIMESTAMP_BITS = 41
NODE_BITS = 10
SEQUENCE_BITS = 12
MAX_NODE_ID = (1 << NODE_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
MAX_TIMESTAMP = (1 << TIMESTAMP_BITS) - 1


class IdError(RuntimeError):
    """No id can be issued safely right now."""


class ClockMovedBackwardsError(IdError):
    pass


class NodeLeaseLostError(IdError):
    pass


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Snowflake:
    """Thread-safe generator. ``node_id`` may change (a new lease); ids stay unique."""

    def __init__(
        self,
        node_id: int | None,
        *,
        epoch_ms: int,
        max_skew_ms: int = 2000,
        clock: Callable[[], int] = _now_ms,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if node_id is not None and not 0 <= node_id <= MAX_NODE_ID:
            raise ValueError(f"node id {node_id} out of range 0..{MAX_NODE_ID}")
        self.epoch_ms = epoch_ms
        self.max_skew_ms = max_skew_ms
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._node_id = node_id
        self._last_ms = -1
        self._sequence = 0
        # monotonic deadline after which the lease may have expired; None = no lease needed.
        self._valid_until: float | None = None

    @property
    def node_id(self) -> int | None:
        return self._node_id

    def set_node(self, node_id: int | None, valid_until: float | None) -> None:
        with self._lock:
            self._node_id = node_id
            self._valid_until = valid_until

    def extend(self, valid_until: float) -> None:
        self._valid_until = valid_until

    def _wait_for_clock(self, now: int) -> int:
        behind = self._last_ms - now
        if behind > self.max_skew_ms:
            raise ClockMovedBackwardsError(
                f"system clock moved back {behind} ms (limit IDS_MAX_CLOCK_SKEW_MS="
                f"{self.max_skew_ms}); refusing to issue ids that could repeat"
            )
        while now < self._last_ms:
            self._sleep((self._last_ms - now) / 1000)
            now = self._clock()
        return now

    def next_id(self) -> int:
        with self._lock:
            if self._node_id is None:
                raise NodeLeaseLostError("no node id leased yet (is Redis reachable?)")
            if self._valid_until is not None and time.monotonic() > self._valid_until:
                raise NodeLeaseLostError(
                    f"node id {self._node_id} lease not renewed in time (is Redis reachable?)"
                )
            now = self._clock()
            if now < self._last_ms:
                now = self._wait_for_clock(now)
            if now == self._last_ms:
                self._sequence = (self._sequence + 1) & MAX_SEQUENCE
                if self._sequence == 0:  # 4096 ids this millisecond: wait for the next one
                    while now <= self._last_ms:
                        now = self._clock()
            else:
                self._sequence = 0
            self._last_ms = now
            elapsed = now - self.epoch_ms
            if not 0 <= elapsed <= MAX_TIMESTAMP:
                raise IdError(f"clock {now} ms is outside the id range of IDS_EPOCH_MS")
            return (
                (elapsed << (NODE_BITS + SEQUENCE_BITS))
                | (self._node_id << SEQUENCE_BITS)
                | self._sequence
            )


def id_timestamp_ms(snowflake_id: int, epoch_ms: int) -> int:
    return (snowflake_id >> (NODE_BITS + SEQUENCE_BITS)) + epoch_ms


def id_node(snowflake_id: int) -> int:
    return (snowflake_id >> SEQUENCE_BITS) & MAX_NODE_ID


# Renew only while we still own the key (another replica may hold it after an expiry).
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class NodeLease:
    """Claims one node id in Redis and keeps it: ``claim``, ``renew``, ``release``."""

    def __init__(self, redis: Redis, prefix: str, ttl: float, owner: str = "") -> None:
        self._redis = redis
        self._prefix = f"{prefix}:ids:node:"
        self._ttl_ms = max(1000, int(ttl * 1000))
        self.token = f"{owner or 'keel'}:{secrets.token_hex(8)}"
        self.node_id: int | None = None

    def _key(self, node_id: int) -> str:
        return f"{self._prefix}{node_id}"

    async def claim(self) -> int:
        # Start at a random id so replicas starting together do not race for the same keys.
        start = random.randint(0, MAX_NODE_ID)  # noqa: S311 - spreading, not crypto
        for offset in range(MAX_NODE_ID + 1):
            candidate = (start + offset) % (MAX_NODE_ID + 1)
            claimed = await self._redis.eval(
                CLAIM_SCRIPT, 1, self._key(candidate), self.token, self._ttl_ms
            )
            if claimed:
                self.node_id = candidate
                return candidate
        raise IdError(f"all {MAX_NODE_ID + 1} node ids are leased")

    async def renew(self) -> bool:
        if self.node_id is None:
            return False
        renewed = await self._redis.eval(
            _RENEW, 1, self._key(self.node_id), self.token, self._ttl_ms
        )
        return bool(renewed)

    async def release(self) -> None:
        if self.node_id is not None:
            await self._redis.eval(_RELEASE, 1, self._key(self.node_id), self.token)
            self.node_id = None


class IdsResource:
    """The process's :class:`Snowflake` (``.ids``), with its node-id lease kept alive in Redis."""

    name = "ids"

    def __init__(self, settings: Settings, redis: RedisResource | None) -> None:
        self._settings = settings
        self._redis = redis
        self.depends_on: Sequence[Resource] = (redis,) if redis is not None else ()
        worker = settings.worker
        fixed = worker.ids_node_id
        if fixed < 0 and settings.redis.backend == "memory":
            fixed = 0
        self._fixed = fixed if fixed >= 0 else None
        self.ids = Snowflake(
            self._fixed, epoch_ms=worker.ids_epoch_ms, max_skew_ms=worker.ids_max_clock_skew_ms
        )
        self._lease: NodeLease | None = None
        self._upkeep = PeriodicTask(
            "ids-lease", self._maintain, self._upkeep_interval, "node id lease upkeep failed"
        )

    @property
    def _ttl(self) -> float:
        return self._settings.worker.ids_lease_ttl

    async def _acquire(self) -> None:
        assert self._lease is not None
        began = time.monotonic()
        node = await self._lease.claim()
        # Trust the lease for 80% of its TTL measured from before the claim was sent.
        self.ids.set_node(node, began + self._ttl * 0.8)
        logger.info("leased snowflake node id {}", node)

    def _upkeep_interval(self) -> float:
        # Renew four times per TTL; without a lease, try to claim one every second.
        has_lease = self._lease is not None and self._lease.node_id is not None
        return max(0.2, self._ttl / 4) if has_lease else 1.0

    async def _maintain(self) -> None:
        assert self._lease is not None
        began = time.monotonic()
        if self._lease.node_id is None:
            await self._acquire()
        elif await self._lease.renew():
            self.ids.extend(began + self._ttl * 0.8)
        else:
            lost = self._lease.node_id
            logger.error("node id {} lease was lost; claiming a new one", lost)
            self._lease.node_id = None
            self.ids.set_node(None, None)
            await self._acquire()

    async def start(self) -> None:
        if self._fixed is not None:
            logger.info("snowflake node id {} (fixed)", self._fixed)
            return
        if self._redis is None:
            raise IdError("node-id lease needs Redis (REDIS_BACKEND=redis or IDS_NODE_ID)")
        self._lease = NodeLease(self._redis.client, self._settings.redis.key_prefix, self._ttl)
        try:
            await self._acquire()
        except Exception as exc:
            if self._settings.redis.required_at_start:
                raise
            logger.error("cannot lease a node id yet ({}); ids unavailable until then", exc)
        self._upkeep.start()

    async def stop(self) -> None:
        await self._upkeep.stop()
        if self._lease is not None:
            self.ids.set_node(None, None)
            with contextlib.suppress(Exception):
                await self._lease.release()
