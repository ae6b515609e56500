"""``/health/live`` (no I/O) and ``/health/ready`` (every registered check).

The stdlib client ``keel healthcheck`` uses is :mod:`keel.health_probe` (it runs every few
seconds in each container and must not import Litestar). The checks reach the handler through
Litestar's dependency injection (``readiness_checks``, provided by :func:`keel.app.create_app`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from keel.components import ReadinessCheck
from keel.resilience import describe_exception


class HealthController(Controller):
    path = "/health"
    include_in_schema = False

    @get("/live", sync_to_thread=False)
    def live(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready")
    async def ready(
        self, readiness_checks: NamedDependency[Sequence[ReadinessCheck]]
    ) -> Response[dict[str, Any]]:
        results = await run_checks(readiness_checks)
        failing = sorted(name for name, outcome in results.items() if outcome != "ok")
        body: dict[str, Any] = {"status": "ok" if not failing else "unavailable", "checks": results}
        if failing:
            body["failing"] = failing
        return Response(body, status_code=HTTP_503_SERVICE_UNAVAILABLE if failing else HTTP_200_OK)


async def _run_one(check: ReadinessCheck) -> str:
    try:
        await asyncio.wait_for(check.check(), timeout=check.timeout)
    except TimeoutError:
        return f"timed out after {check.timeout:g}s"
    except Exception as exc:  # noqa: BLE001 - any failure is the check's answer
        return describe_exception(exc)
    return "ok"


async def run_checks(checks: Sequence[ReadinessCheck]) -> dict[str, str]:
    outcomes = await asyncio.gather(*(_run_one(check) for check in checks))
    return {check.name: outcome for check, outcome in zip(checks, outcomes, strict=True)}
