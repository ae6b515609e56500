"""How Keel rides out a dependency that is not there yet: the shared helpers, in one place.

- :func:`backoff`: exponential delay (optionally with jitter) for every retry loop;
- :func:`retry_until_ready`: connect-with-retries for the startup checks (DB, Redis);
- :class:`PeriodicTask`: a background loop (heartbeat, sweeper, node-id lease) that survives
  a failing step, and stops cleanly;
- :func:`describe_exception`: the one way an error becomes a log/status line.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable

from loguru import logger


def describe_exception(exc: BaseException, *, whole: bool = False) -> str:
    """``Type: message`` (the first line of the message unless ``whole``), or ``Type``."""
    text = str(exc).strip()
    if text and not whole:
        text = text.splitlines()[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def backoff(attempt: int, base: float, cap: float, *, jitter: bool = True) -> float:
    """``base * 2**(attempt-1)`` capped at ``cap`` (attempt counts from 1); with ``jitter`` a
    random point in [50 %, 100 %] of that, so clients that failed together retry apart."""
    delay = min(cap, base * 2.0 ** max(0, attempt - 1))
    if not jitter:
        return delay
    return delay * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto


async def retry_until_ready(
    probe: Callable[[], Awaitable[object]],
    *,
    attempts: int,
    retryable: Callable[[BaseException], bool],
    waiting: str,
    base: float = 0.5,
    cap: float = 5.0,
) -> tuple[Exception, int] | None:
    """Call ``probe`` until it succeeds, retrying (with backoff) only what waiting can fix.

    Returns None on success, else the last error and the attempt it happened on (at once when
    the error is not ``retryable``). ``waiting`` starts the log line of each retry.
    """
    attempts = max(1, attempts)
    for attempt in range(1, attempts + 1):
        try:
            await probe()
        except Exception as exc:  # noqa: BLE001 - classified by the caller's rule
            if not retryable(exc) or attempt == attempts:
                return exc, attempt
            delay = backoff(attempt, base, cap)
            # Counted like the final error ("after N attempts"): attempt k of N.
            logger.warning(
                "{}: attempt {} of {} failed; next in {:.1f}s", waiting, attempt, attempts, delay
            )
            await asyncio.sleep(delay)
        else:
            return None
    raise AssertionError("unreachable")


class PeriodicTask:
    """Run ``step`` every ``interval()`` seconds in the background until :meth:`stop`.

    A failing step is logged (``failed`` starts the line) and the next round tries again: a
    Redis or database hiccup must not end a heartbeat or a lease upkeep.
    """

    def __init__(
        self,
        name: str,
        step: Callable[[], Awaitable[object]],
        interval: Callable[[], float],
        failed: str,
    ) -> None:
        self.name = name
        self._step = step
        self._interval = interval
        self._failed = failed
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval())
            try:
                await self._step()
            except Exception as exc:  # noqa: BLE001 - the next round retries
                logger.warning("{}: {}", self._failed, exc)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
