"""HTTP metrics, fed by the outer request layer (:class:`keel.middleware.ResponseObserver`):
every response, 404s and refused requests too, labelled by route template (``unmatched`` when
no route matched), never the raw path. Counts are kept in plain dicts and written to the shared
metric files at most once a second: a multiprocess write costs ~1.5 µs and a request would
need five of them.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from typing import Any

from keel.metrics import families

FLUSH_INTERVAL_S = 1.0
_BOUNDS = families.HTTP_DURATION._upper_bounds
_STATUS_CLASS = {n: f"{n}xx" for n in range(1, 6)}
# The method comes from the client: anything unusual is one label value, not a new series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpStats:
    """Per-process tallies, flushed into the families (tested against ``observe``).

    One dict entry per (method, route, status): ``[requests, seconds, bucket counts...]``.
    """

    def __init__(self) -> None:
        self.series: dict[tuple[str, str, int], list[float]] = {}
        self.in_flight = 0
        self._scheduled = False

    def begin(self) -> None:
        self.in_flight += 1

    def end(self, scope: Any, status: int, seconds: float) -> None:
        self.in_flight -= 1
        method = scope["method"]
        key = (
            method if method in _METHODS else "other",
            scope.get("path_template") or "unmatched",
            status,
        )
        tally = self.series.get(key)
        if tally is None:
            tally = self.series[key] = [0.0] * (2 + len(_BOUNDS))
        tally[0] += 1
        tally[1] += seconds
        # The first bound >= seconds, as observe() picks it (the last bound is +Inf).
        tally[2 + bisect_left(_BOUNDS, seconds)] += 1
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self.flush)

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        """One response, as the request layer reports it (tests and benchmarks)."""
        self.begin()
        self.end({"method": method, "path_template": route}, status, seconds)

    def flush(self) -> None:
        self._scheduled = False
        series, self.series = self.series, {}
        for (method, route, status), tally in series.items():
            status_class = _STATUS_CLASS.get(status // 100, "other")
            families.HTTP_REQUESTS.labels(method, route, status_class).inc(tally[0])
            child = families.HTTP_DURATION.labels(method, route)
            child._sum.inc(tally[1])  # what observe() does, batched
            for index, count in enumerate(tally[2:]):
                if count:
                    child._buckets[index].inc(count)
        families.HTTP_IN_FLIGHT.set(self.in_flight)


STATS = HttpStats()
