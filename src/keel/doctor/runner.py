"""Run the selected checks one after another, each with a time limit, never raising."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from keel.doctor import checks_db
from keel.doctor.context import DoctorContext
from keel.doctor.model import Blocked, Check, Outcome, Result, Status, fail, skip
from keel.resilience import describe_exception

CHECK_TIMEOUT_S = 10.0


async def _one(check: Check, ctx: DoctorContext) -> Outcome:
    try:
        return await asyncio.wait_for(check.run(ctx), CHECK_TIMEOUT_S)
    except Blocked as exc:
        return skip(str(exc))
    except TimeoutError:
        return fail(f"no answer within {CHECK_TIMEOUT_S:g}s")
    except Exception as exc:  # noqa: BLE001 - a check that breaks is that check's FAIL
        return fail(describe_exception(exc))


async def run_checks(checks: Sequence[Check], ctx: DoctorContext) -> list[Result]:
    results = []
    try:
        for check in checks:
            began = time.perf_counter()
            outcome = await _one(check, ctx)
            status = outcome.status
            if status is Status.FAIL and check.optional:
                status = Status.WARN
            fix = outcome.fix or check.fix if status in (Status.FAIL, Status.WARN) else ""
            results.append(
                Result(
                    check=check,
                    status=status,
                    detail=outcome.detail,
                    fix=fix.replace("<env>", ctx.env),
                    duration_ms=round((time.perf_counter() - began) * 1000, 1),
                )
            )
    finally:
        await checks_db.close(ctx)
        await ctx.close()
    return results
