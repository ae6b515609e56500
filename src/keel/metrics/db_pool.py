"""Connection-pool gauges from SQLAlchemy pool events (checkout/checkin in this process)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from keel.metrics import families


def watch_pool(engine: AsyncEngine) -> None:
    pool = engine.sync_engine.pool
    if not isinstance(pool, QueuePool):
        return  # SQLite's static/null pools have nothing to saturate
    families.DB_POOL_CAPACITY.inc(pool.size() + pool._max_overflow)

    def update() -> None:
        families.DB_POOL_OVERFLOW.set(max(0, pool.overflow()))

    def checkout(*_: Any) -> None:
        families.DB_POOL_CHECKED_OUT.inc()
        update()

    def checkin(*_: Any) -> None:
        families.DB_POOL_CHECKED_OUT.dec()
        update()

    event.listen(pool, "checkout", checkout)
    event.listen(pool, "checkin", checkin)
