"""``ALLOWED_HOSTS``: which Host headers the API answers (others: 400), checked at the edge.

The outer ASGI layer (:mod:`keel.middleware`) reads the Host header in the one pass it makes
over the request headers anyway; a Litestar middleware would parse them again for every route.
Rules: an entry is a host name or address (``api.example.com``, ``127.0.0.1``) or a wildcard for
its subdomains (``*.example.com``); ports are ignored, in the header and in an entry
(``127.0.0.1:8000`` matches ``127.0.0.1``), as is case. ``*`` allows every host (no check).
Probes are exempt (``/health/``): kubelet, Docker and load balancers send the container's
address as Host.
"""

from __future__ import annotations

from collections.abc import Sequence

PROBE_PREFIX = "/health/"
REFUSED_BODY = b'{"status_code":400,"detail":"invalid host header"}'


def _name(host: str) -> str:
    """``host`` without its port, in lower case (``[::1]:8000`` -> ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostCheck:
    def __init__(self, allowed: Sequence[str]) -> None:
        names = [_name(entry) for entry in allowed if entry.strip()]
        self._exact = frozenset(n for n in names if not n.startswith("*."))
        self._suffixes = tuple(n[1:] for n in names if n.startswith("*."))  # ".example.com"

    @classmethod
    def from_setting(cls, allowed: Sequence[str]) -> HostCheck | None:
        """None when ``*`` is among the entries: every host is allowed."""
        return None if "*" in allowed else cls(allowed)

    def allows(self, host_header: bytes | None, path: str) -> bool:
        if path.startswith(PROBE_PREFIX):
            return True
        if not host_header:
            return False
        name = _name(host_header.decode("latin-1"))
        return name in self._exact or name.endswith(self._suffixes)
