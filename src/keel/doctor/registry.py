"""Every check, in the order they run (what the later ones need comes first)."""

from __future__ import annotations

from keel.doctor import checks_config, checks_db, checks_redis
from keel.doctor.model import Check

CHECKS: list[Check] = [*checks_config.CHECKS, *checks_db.CHECKS, *checks_redis.CHECKS]


def select(only: list[str], skip: list[str]) -> tuple[list[Check], list[str]]:
    """Checks named (by id or group: ``db`` = every ``db.*``) in ``only`` minus ``skip``.

    Returns the checks and the names that match nothing (a usage error).
    """

    def matches(check: Check, name: str) -> bool:
        return name in (check.id, check.group)

    unknown = [n for n in [*only, *skip] if not any(matches(c, n) for c in CHECKS)]
    chosen = [c for c in CHECKS if not only or any(matches(c, n) for n in only)]
    chosen = [c for c in chosen if not any(matches(c, n) for n in skip)]
    return chosen, unknown
