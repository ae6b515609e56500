"""``/health/live`` (no I/O) and ``/health/ready`` (every registered check).

The stdlib client lives in :mod:`keel.health_probe` (re-exported here): ``keel healthcheck``
runs every few seconds in each container and must not import Litestar.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from keel.components import ReadinessCheck
from keel.health_probe import probe, summarise
from keel.lifecycle import describe_exception


class HealthController(Controller):
    path = "/health"
    include_in_schema = False

    @get("/live", sync_to_thread=False)
    def live(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready")
    async def ready(self, state: State) -> Response[dict[str, Any]]:
        checks: Sequence[ReadinessCheck] = state.get("readiness_checks", ())
        results = await run_checks(checks, state)
        failing = sorted(name for name, outcome in results.items() if outcome != "ok")
        body: dict[str, Any] = {"status": "ok" if not failing else "unavailable", "checks": results}
        if failing:
            body["failing"] = failing
        return Response(body, status_code=HTTP_503_SERVICE_UNAVAILABLE if failing else HTTP_200_OK)


async def _run_one(check: ReadinessCheck, state: State) -> str:
    try:
        await asyncio.wait_for(check.check(state), timeout=check.timeout)
    except TimeoutError:
        return f"timed out after {check.timeout:g}s"
    except Exception as exc:  # noqa: BLE001 - any failure is the check's answer
        return describe_exception(exc)
    return "ok"


async def run_checks(checks: Sequence[ReadinessCheck], state: State) -> dict[str, str]:
    outcomes = await asyncio.gather(*(_run_one(check, state) for check in checks))
    return {check.name: outcome for check, outcome in zip(checks, outcomes, strict=True)}


__all__ = ["HealthController", "probe", "run_checks", "summarise"]
