"""The Taskiq worker, the job runtime (delivery, retries, heartbeat) and snowflake ids."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta


class WorkerSettings(msgspec.Struct, frozen=True, kw_only=True):
    queues: list[str] = msgspec.field(default_factory=lambda: ["default"], name="WORKER_QUEUES")
    processes: Annotated[int, msgspec.Meta(ge=1, le=256)] = msgspec.field(
        default=1, name="WORKER_PROCESSES"
    )
    max_async_tasks: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = msgspec.field(
        default=10, name="WORKER_MAX_ASYNC_TASKS"
    )
    # Part of the one shutdown budget: in-flight jobs get this long after SIGTERM.
    shutdown_timeout: float = msgspec.field(default=20.0, name="WORKER_SHUTDOWN_TIMEOUT")
    # A message not acknowledged for this long is reclaimed by another worker. Must be longer
    # than the longest job (a job still running past it is checked, never run twice at once).
    idle_timeout: float = msgspec.field(default=300.0, name="WORKER_IDLE_TIMEOUT")
    # How often an idle worker looks for messages a dead worker left unacknowledged.
    reclaim_interval: float = msgspec.field(default=5.0, name="WORKER_RECLAIM_INTERVAL")
    # Auto-release of the reclaim lock, so a killed worker cannot block reclaiming.
    unacknowledged_lock_timeout: float = msgspec.field(
        default=30.0, name="WORKER_UNACK_LOCK_TIMEOUT"
    )
    # Streams are trimmed (approximately) to this many entries.
    stream_maxlen: int = msgspec.field(default=100_000, name="WORKER_STREAM_MAXLEN")
    # Messages fetched per read; the receiver still runs at most max_async_tasks at once.
    fetch_count: int = msgspec.field(default=100, name="WORKER_FETCH_COUNT")
    # Taskiq results live this long in Redis (the job row is the durable record).
    result_ttl: int = msgspec.field(default=3600, name="WORKER_RESULT_TTL")
    max_attempts: int = msgspec.field(default=3, name="JOB_MAX_ATTEMPTS")
    # What one caller's jobs may cost (keel.domain.jobs.limits): queued + running at once,
    # and the largest sleep / checksum a payload may ask for (prod ships lower bounds).
    max_active_jobs_per_owner: Annotated[int, Meta(ge=1, le=1_000_000)] = msgspec.field(
        default=100, name="JOB_MAX_ACTIVE_PER_OWNER"
    )
    max_sleep_seconds: Annotated[float, Meta(ge=0, le=3600)] = msgspec.field(
        default=3600.0, name="JOB_MAX_SLEEP_SECONDS"
    )
    max_checksum_mebibytes: Annotated[int, Meta(ge=1, le=4096)] = msgspec.field(
        default=4096, name="JOB_MAX_CHECKSUM_MEBIBYTES"
    )
    # Exponential backoff between attempts: base * 2**(attempt-1), capped, plus jitter.
    retry_backoff: float = msgspec.field(default=1.0, name="JOB_RETRY_BACKOFF")
    retry_backoff_max: float = msgspec.field(default=60.0, name="JOB_RETRY_BACKOFF_MAX")
    # A job queued longer than this gets a new message (its own may be lost, e.g. Redis lost
    # its data); duplicates are harmless. One worker sweeps every WORKER_SWEEP_INTERVAL.
    requeue_after: float = msgspec.field(default=600.0, name="WORKER_REQUEUE_AFTER")
    sweep_interval: float = msgspec.field(default=60.0, name="WORKER_SWEEP_INTERVAL")
    heartbeat_interval: float = msgspec.field(default=5.0, name="WORKER_HEARTBEAT_INTERVAL")
    heartbeat_ttl: float = msgspec.field(default=15.0, name="WORKER_HEARTBEAT_TTL")
    # A worker consuming the gpu queue refuses to start when no GPU is visible, unless this is on.
    allow_gpu_queue_without_gpu: bool = msgspec.field(
        default=False, name="WORKER_ALLOW_GPU_QUEUE_WITHOUT_GPU"
    )
    # Snowflake ids: epoch (ms since the Unix epoch) and the node-id lease in Redis.
    ids_epoch_ms: int = msgspec.field(default=1_767_225_600_000, name="IDS_EPOCH_MS")
    # -1: lease a node id from Redis. 0..1023: use this one (REDIS_BACKEND=memory uses 0).
    ids_node_id: int = msgspec.field(default=-1, name="IDS_NODE_ID")
    ids_lease_ttl: float = msgspec.field(default=60.0, name="IDS_LEASE_TTL")
    # A clock that goes back by at most this much is waited out; more fails loudly.
    ids_max_clock_skew_ms: int = msgspec.field(default=2000, name="IDS_MAX_CLOCK_SKEW_MS")
