"""Keel's batched result writes land where taskiq-redis' own ``get_result`` reads them."""

from __future__ import annotations

from taskiq.result import TaskiqResult

from keel.redis_conn import connection_options, redis_url
from keel.tasks.broker import KeelResultBackend
from tests.service.conftest import make_settings
from tests.service.servers import RedisServer


async def test_a_result_written_by_keel_is_read_back_by_taskiq_redis(
    redis_server: RedisServer,
) -> None:
    settings = make_settings(redis_server.env())
    backend = KeelResultBackend(
        redis_url(settings),
        prefix="keel-results-test",
        result_ex_time=30,
        **connection_options(settings),
    )
    result: TaskiqResult[dict[str, str]] = TaskiqResult(
        is_err=False, return_value={"job_id": "1", "outcome": "succeeded"}, execution_time=0.1
    )
    try:
        await backend.set_result("task-1", result)
        assert await backend.is_result_ready("task-1")
        read = await backend.get_result("task-1")
        assert read.return_value == {"job_id": "1", "outcome": "succeeded"}
    finally:
        await backend.shutdown()
