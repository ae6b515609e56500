"""Clock skew: a server's time against ours, half the round trip taken as the delay."""

from __future__ import annotations

from keel.doctor.model import Outcome, fail, ok, warn

# Snowflake ids wait out a clock that goes back by up to IDS_MAX_CLOCK_SKEW_MS (2 s by default);
# JWT expiry and request signatures allow a few seconds. Past these, things start to break.
WARN_S = 0.5
FAIL_S = 2.0


def judge(server_name: str, server_s: float, before_s: float, after_s: float) -> Outcome:
    ours = (before_s + after_s) / 2
    skew = server_s - ours
    rtt_ms = (after_s - before_s) * 1000
    detail = f"{server_name} clock {skew:+.3f} s from ours (round trip {rtt_ms:.0f} ms)"
    if abs(skew) > FAIL_S:
        return fail(detail)
    if abs(skew) > WARN_S:
        return warn(detail)
    return ok(detail)
