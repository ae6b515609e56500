"""Redis and the job system: reachable, auth, persistence, consumer groups, live workers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from keel.doctor.context import DoctorContext
from keel.doctor.model import DOCS, Blocked, Check, Outcome, fail, ok, skip, warn

_DOCS = f"{DOCS}#troubleshooting"


async def _ping(ctx: DoctorContext) -> Exception | None:
    """One PING shared by the checks: None when Redis answered, else the error."""
    cached = ctx.probe("redis")
    if cached is not None:
        return None if cached == "ok" else cached
    try:
        await ctx.redis().ping()
    except Blocked:
        raise
    except Exception as exc:  # noqa: BLE001 - classified by the checks
        ctx.remember("redis", exc)
        return exc
    ctx.remember("redis", "ok")
    return None


def _is_auth(exc: Exception) -> bool:
    from redis.exceptions import AuthenticationError, ResponseError

    return isinstance(exc, AuthenticationError) or (
        isinstance(exc, ResponseError) and str(exc).startswith(("NOAUTH", "WRONGPASS"))
    )


def _where(ctx: DoctorContext) -> str:
    from keel.redis_conn import redis_where

    return redis_where(ctx.settings)


async def _usable(ctx: DoctorContext) -> Any:
    error = await _ping(ctx)
    if error is not None:
        raise Blocked("Redis not usable (see redis.reachable, redis.auth)")
    return ctx.redis()


async def reachable(ctx: DoctorContext) -> Outcome:
    error = await _ping(ctx)
    if error is not None and not _is_auth(error):
        return fail(f"Redis at {_where(ctx)}: {type(error).__name__}: {error}")
    return ok(f"Redis at {_where(ctx)} answers")


async def auth(ctx: DoctorContext) -> Outcome:
    error = await _ping(ctx)
    if error is None:
        has_password = bool(ctx.settings.redis.password or ctx.settings.redis.url)
        return ok("authenticated" if has_password else "no password set, none required")
    if _is_auth(error):
        return fail(f"Redis at {_where(ctx)} refused the credentials: {error}")
    return skip("Redis unreachable (see redis.reachable)")


async def persistence(ctx: DoctorContext) -> Outcome:
    redis = await _usable(ctx)
    info = await redis.info("persistence")
    aof = int(info.get("aof_enabled", 0)) == 1
    detail = f"appendonly {'yes' if aof else 'no'}"
    if aof:
        return ok(detail)
    if ctx.settings.app.env == "prod":
        return fail(f"{detail}: a Redis restart loses queued messages, leases and revocations")
    return skip(f"{detail} (required in prod only)")


async def consumer_groups(ctx: DoctorContext) -> Outcome:
    from redis.exceptions import ResponseError

    from keel.domain.jobs.kinds import QUEUES
    from keel.tasks.broker import CONSUMER_GROUP, stream_name

    redis = await _usable(ctx)
    # The api creates the groups of every queue; a queue nobody here serves may lack one.
    served = {"default", *ctx.settings.worker.queues}
    missing: list[str] = []
    optional: list[str] = []
    for queue in QUEUES:
        stream = stream_name(ctx.settings, queue)
        try:
            groups = await redis.xinfo_groups(stream)
        except ResponseError:  # no such key
            groups = []
        names = {g["name"].decode() if isinstance(g["name"], bytes) else g["name"] for g in groups}
        if CONSUMER_GROUP not in names:
            (missing if queue in served else optional).append(stream)
    if missing:
        return fail(f"consumer group {CONSUMER_GROUP} missing on {', '.join(missing)}")
    note = f" (not yet on {', '.join(optional)}: no api started)" if optional else ""
    return ok(f"group {CONSUMER_GROUP} on {len(QUEUES) - len(optional)} stream(s){note}")


def _workers(queue: str) -> Any:
    async def run(ctx: DoctorContext) -> Outcome:
        from keel.heartbeats import read_heartbeats

        redis = await _usable(ctx)
        settings = ctx.settings
        beats = [b for b in await read_heartbeats(redis, settings) if queue in b.queues]
        required = queue == "default" or queue in settings.worker.queues
        if not beats:
            if required:
                return fail(f"no live worker heartbeat for queue {queue}")
            return skip(f"no worker serves queue {queue} (optional here)")
        now = dt.datetime.fromtimestamp(ctx.clock(), dt.UTC)
        ages = [(now - b.beat_at).total_seconds() for b in beats]
        oldest = max(ages)
        detail = f"{len(beats)} live worker(s) on {queue}, newest heartbeat {min(ages):.1f}s old"
        if oldest > 2 * settings.worker.heartbeat_interval + 1:
            return warn(
                f"{detail}; one is {oldest:.1f}s old "
                f"(interval {settings.worker.heartbeat_interval:g}s)",
                "a worker's event loop is blocked or its clock is off: `make logs`",
            )
        return ok(detail)

    return run


async def clock(ctx: DoctorContext) -> Outcome:
    from keel.doctor.skew import judge

    redis = await _usable(ctx)
    before = ctx.clock()
    seconds, micros = await redis.time()
    after = ctx.clock()
    return judge("Redis", seconds + micros / 1e6, before, after)


async def gpu_visible(ctx: DoctorContext) -> Outcome:
    import asyncio

    settings = ctx.settings
    if "gpu" not in settings.worker.queues:
        return skip("the gpu queue is not configured here (WORKER_QUEUES)")
    from keel.gpu import snapshot

    snap = await asyncio.to_thread(snapshot, settings)
    if snap.has_usable_gpu:
        names = ", ".join(sorted({g.name or "GPU" for g in snap.gpus}))
        return ok(f"{len(snap.gpus)} GPU(s) visible via {snap.source}: {names}")
    return fail(f"gpu queue configured but no usable GPU: {snap.reason or 'none visible'}")


CHECKS = [
    Check(
        "redis.reachable",
        "Redis reachable",
        reachable,
        fix="start Redis (`make up ENV=<env>`, `make ps`) or correct REDIS_HOST / REDIS_PORT",
        docs=_DOCS,
    ),
    Check(
        "redis.auth",
        "Redis credentials accepted",
        auth,
        fix="REDIS_PASSWORD must match Redis' requirepass: `containers/compose.sh logs redis "
        "credentials`",
        docs=f"{DOCS}#secrets-in-the-stack",
    ),
    Check(
        "redis.persistence",
        "Redis persistence (AOF) in prod",
        persistence,
        fix="run Redis with `--appendonly yes` (configs/prod/compose.yaml does)",
        docs=f"{DOCS}#bring-up-per-environment",
    ),
    Check(
        "broker.groups",
        "broker consumer groups",
        consumer_groups,
        fix="start the api or a worker (they create the group); after a Redis data loss they "
        "re-create it on their own",
        docs="docs/jobs.md",
    ),
    Check(
        "workers.default",
        "live worker for queue default",
        _workers("default"),
        fix="start a worker (`make up`, `keel worker`); `make logs` shows why one exits",
        docs=f"{DOCS}#healthchecks-and-what-they-mean",
    ),
    Check(
        "workers.gpu",
        "live worker for queue gpu",
        _workers("gpu"),
        fix="start the GPU worker (`make up ENV=<env> GPU=1`)",
        docs="docs/gpu.md",
    ),
    Check(
        "clock.redis",
        "clock skew against Redis",
        clock,
        fix="synchronise the host clock (chrony / systemd-timesyncd)",
        docs=_DOCS,
    ),
    Check(
        "gpu.visible",
        "GPU visible for the gpu queue",
        gpu_visible,
        fix="install the NVIDIA driver / Container Toolkit, or drop gpu from WORKER_QUEUES",
        docs="docs/gpu.md",
    ),
]
