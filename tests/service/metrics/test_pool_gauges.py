"""DB pool gauges against a real PostgreSQL pool: connections held show as checked out."""

from __future__ import annotations

import contextlib

from prometheus_client import REGISTRY

from keel.db.engine import sqlalchemy_config
from keel.metrics.db_pool import PoolSampler
from tests.service.conftest import make_settings


def _gauge(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_pool_gauges_follow_checkouts(pg_env: dict[str, str]) -> None:
    settings = make_settings({**pg_env, "DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "3"})
    engine = sqlalchemy_config(settings).get_engine()
    sampler = PoolSampler(engine)
    sampler.start()
    try:
        assert _gauge("keel_db_pool_capacity") == 5
        async with contextlib.AsyncExitStack() as held:
            for _ in range(3):
                await held.enter_async_context(engine.connect())
            sampler.sample()
            assert _gauge("keel_db_pool_checked_out") == 3
            assert _gauge("keel_db_pool_overflow") == 1
        sampler.sample()
        assert _gauge("keel_db_pool_checked_out") == 0
        assert _gauge("keel_db_pool_overflow") == 0
    finally:
        await sampler.stop()
        await engine.dispose()
