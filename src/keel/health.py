"""``/health/live`` (no I/O), ``/health/ready`` (every registered check) and the stdlib client."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from keel.components import ReadinessCheck
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


def probe(url: str, timeout: float = 3.0) -> tuple[bool, str]:
    """One HTTP GET with the standard library only (container healthchecks have no curl)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) URL we build
            body = response.read(4096).decode("utf-8", "replace")
            return 200 <= response.status < 300, f"{response.status} {body.strip()}"
    except urllib.error.HTTPError as exc:
        body = exc.read(4096).decode("utf-8", "replace")
        return False, f"{exc.code} {body.strip()}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"unreachable: {reason}"


def summarise(body: str) -> str:
    """Name the failing checks of a /health/ready body, for the healthcheck's one line."""
    try:
        document = json.loads(body.split(" ", 1)[1])
    except (IndexError, ValueError):
        return body
    failing = document.get("failing") if isinstance(document, dict) else None
    return f"failing: {', '.join(failing)}" if failing else body
