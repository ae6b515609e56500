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
