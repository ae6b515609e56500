"""`keel healthcheck worker` (readiness) and `--live` (liveness) against a real Redis.

Kubernetes restarts a container whose liveness probe fails: `--live` must fail for a worker whose
heartbeat is gone while Redis answers, and pass when Redis itself is down or hung (restarting
every worker would not bring Redis back). The plain check fails in both cases.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from keel.heartbeats import new_worker_id
from keel.redis_client import RedisResource
from keel.tasks.heartbeat import HeartbeatResource
from tests.service.conftest import KEEL, make_settings, process_env
from tests.service.servers import free_port


def _healthcheck(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KEEL, "healthcheck", "worker", *extra],
        env=process_env(env),
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )


async def _beat_once(env: dict[str, str]) -> None:
    """One real heartbeat of a worker on this host (what `keel worker` writes every few s)."""
    settings = make_settings({**env, "WORKER_HEARTBEAT_TTL": "30"})
    redis = RedisResource(settings)
    try:
        resource = HeartbeatResource(settings, redis, new_worker_id(), ["default"], lambda: 0)
        await resource.beat()
    finally:
        await redis.stop()


@pytest.fixture
def silent_redis() -> Iterator[dict[str, str]]:
    """A TCP port that accepts connections and never answers: a hung Redis."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield {
        "REDIS_BACKEND": "redis",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(server.getsockname()[1]),
    }
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    server.close()


def test_no_heartbeat_fails_both_checks(redis_env: dict[str, str]) -> None:
    ready, live = _healthcheck(redis_env), _healthcheck(redis_env, "--live")
    assert ready.returncode == 1, ready.stdout + ready.stderr
    assert live.returncode == 1, live.stdout + live.stderr
    assert "no fresh heartbeat" in live.stdout


def test_fresh_heartbeat_passes_both_checks(redis_env: dict[str, str]) -> None:
    asyncio.run(_beat_once(redis_env))
    for check in (_healthcheck(redis_env), _healthcheck(redis_env, "--live")):
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout.startswith("healthy:")
        assert "queues default" in check.stdout


def test_unreachable_redis_fails_readiness_but_not_liveness() -> None:
    env = {
        "REDIS_BACKEND": "redis",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(free_port()),
        "REDIS_CONNECT_RETRIES": "1",
    }
    ready, live = _healthcheck(env), _healthcheck(env, "--live")
    assert ready.returncode == 1
    assert "cannot read heartbeats from Redis at 127.0.0.1" in ready.stdout
    assert live.returncode == 0, live.stdout + live.stderr
    assert "liveness not judged" in live.stdout


def test_hung_redis_answers_within_the_probe_timeout(silent_redis: dict[str, str]) -> None:
    for extra, code in (((), 1), (("--live",), 0)):
        began = time.monotonic()
        check = _healthcheck(silent_redis, *extra)
        # Inside the 10 s the Kubernetes probes allow (settings load included): a probe killed
        # by its timeout counts as failed, which --live must not be.
        assert time.monotonic() - began < 10
        assert check.returncode == code, check.stdout + check.stderr
        assert ("liveness not judged" if extra else "did not answer within 3s") in check.stdout
