"""Unhandled errors in the log: one traceback per distinct cause, then a count, not a flood.

A request that can trigger an unhandled error can be sent a million times; logging a traceback
each time turns that into a cheap way to fill the disk and drown real problems. A cause is the
exception type plus where it was raised (file and line); the first occurrence logs the
traceback with its request id, repeats within ``window_seconds`` are only counted, and the
first one after the window logs one line with the count (and its own request id).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger


@dataclass(slots=True)
class _Seen:
    last_logged: float
    suppressed: int = 0


def cause_of(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    return f"{type(exc).__module__}.{type(exc).__qualname__} at {where}"


class ErrorDigest:
    def __init__(
        self,
        window_seconds: float = 60.0,
        max_causes: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window_seconds
        self.max_causes = max_causes
        self._clock = clock
        self._seen: dict[str, _Seen] = {}

    def record(self, exc: BaseException, what: str) -> bool:
        """Log ``exc`` (``what``: method and path) unless its cause was logged recently.

        Returns True when something was written.
        """
        cause = cause_of(exc)
        now = self._clock()
        seen = self._seen.get(cause)
        if seen is None:
            if len(self._seen) >= self.max_causes:
                self._seen.clear()  # bounded memory; the worst case is one traceback again
            self._seen[cause] = _Seen(last_logged=now)
            logger.opt(exception=exc).error("unhandled error on {}", what)
            return True
        if now - seen.last_logged < self.window:
            seen.suppressed += 1
            return False
        repeats, seen.suppressed, seen.last_logged = seen.suppressed, 0, now
        logger.error(
            "unhandled error on {} again: {} ({} more in the last {:.0f}s; traceback logged once)",
            what,
            cause,
            repeats,
            self.window,
        )
        return True


unhandled_errors = ErrorDigest()
