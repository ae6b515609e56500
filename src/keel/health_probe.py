"""The stdlib-only client behind ``keel healthcheck api`` (container healthchecks have no curl).

Kept apart from :mod:`keel.health` so a probe, run every few seconds in every container, starts
in milliseconds instead of importing the web framework.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request


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


# `keel healthcheck ... --ready-once` (Swarm, which kills unhealthy tasks): readiness until it
# passed once in this container, then liveness only, so a DB or Redis outage does not get every
# task killed. The marker lives on the container's own /tmp (a tmpfs mount on Swarm): a new task
# starts unmarked and is gated on readiness again.
READY_MARKER_DIR = "/tmp"  # noqa: S108 - the container's private tmpfs


def ready_marker(target: str, directory: str | None = None) -> str:
    return f"{directory or READY_MARKER_DIR}/keel-ready-once-{target}"


def was_ready(target: str, directory: str | None = None) -> bool:
    import os.path

    return os.path.exists(ready_marker(target, directory))


def mark_ready(target: str, directory: str | None = None) -> None:
    with open(ready_marker(target, directory), "a", encoding="utf-8"):
        pass
