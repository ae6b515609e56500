"""HTTP metrics as a raw ASGI middleware inside Litestar (after routing: the route template
is known). Counts are kept in plain dicts and written to the shared metric files at most once
a second: a multiprocess write costs ~1.5 µs and a request would need five of them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from keel.metrics import families

FLUSH_INTERVAL_S = 1.0
_BOUNDS = families.HTTP_DURATION._upper_bounds
_STATUS_CLASS = {n: f"{n}xx" for n in range(1, 6)}


class HttpStats:
    """Per-process tallies, flushed into the families (tested against ``observe``)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = {}
        self.in_flight = 0
        self._scheduled = False

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, _STATUS_CLASS.get(status // 100, "other"))
        self.counts[key] = self.counts.get(key, 0) + 1
        series = (method, route)
        counts = self.buckets.get(series)
        if counts is None:
            counts = self.buckets[series] = [0] * len(_BOUNDS)
            self.sums[series] = 0.0
        self.sums[series] += seconds
        for index, bound in enumerate(_BOUNDS):
            if seconds <= bound:
                counts[index] += 1
                break
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        counts, self.counts = self.counts, {}
        buckets, self.buckets = self.buckets, {}
        sums, self.sums = self.sums, {}
        for key, count in counts.items():
            families.HTTP_REQUESTS.labels(*key).inc(count)
        for series, per_bucket in buckets.items():
            child = families.HTTP_DURATION.labels(*series)
            child._sum.inc(sums[series])
            for index, count in enumerate(per_bucket):
                if count:
                    child._buckets[index].inc(count)
        families.HTTP_IN_FLIGHT.set(self.in_flight)


STATS = HttpStats()


class HttpMetricsMiddleware:
    """Litestar middleware (``middleware=[...]``): runs for every routed request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # an exception before the response started is answered with a 500

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        stats = STATS
        stats.in_flight += 1
        try:
            await self.app(scope, receive, send_status)
        finally:
            stats.in_flight -= 1
            route = scope.get("path_template") or "unmatched"
            stats.record(scope["method"], route, status, time.perf_counter() - began)
