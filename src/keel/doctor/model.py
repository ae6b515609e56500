"""What a check is and what it answers: the vocabulary every check group shares."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.doctor.context import DoctorContext


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A check's answer. ``fix`` overrides the check's default fix line for this case."""

    status: Status
    detail: str
    fix: str = ""


def ok(detail: str) -> Outcome:
    return Outcome(Status.OK, detail)


def warn(detail: str, fix: str = "") -> Outcome:
    return Outcome(Status.WARN, detail, fix)


def fail(detail: str, fix: str = "") -> Outcome:
    return Outcome(Status.FAIL, detail, fix)


def skip(detail: str) -> Outcome:
    return Outcome(Status.SKIP, detail)


class Blocked(Exception):  # noqa: N818 - a control-flow signal, not an error to report
    """Raised by a context helper when a check cannot run (config did not load, ...)."""


RunFunc = Callable[["DoctorContext"], Awaitable[Outcome]]

DOCS = "docs/operations.md"


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    title: str
    run: RunFunc
    fix: str
    docs: str = f"{DOCS}#troubleshooting"
    # Optional checks never fail: a FAIL becomes a WARN (a missing GPU is not an outage).
    optional: bool = False

    @property
    def group(self) -> str:
        return self.id.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class Result:
    check: Check
    status: Status
    detail: str
    fix: str
    duration_ms: float
