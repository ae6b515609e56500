"""The client's address: the TCP peer, or ``X-Forwarded-For`` when the peer is a trusted proxy.

Behind a reverse proxy every request comes from the proxy, so per-client limits would put all
clients in one bucket; but a header anyone can send must not choose the bucket either. The rule
(as nginx's realip module and most frameworks apply it): only when the peer is listed in
``TRUSTED_PROXIES`` is ``X-Forwarded-For`` read, from the right, skipping addresses that are
themselves trusted proxies; the first other address is the client. A malformed entry ends the
walk at the last trusted hop, never at a value the client made up.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

FORWARDED_FOR = b"x-forwarded-for"


def parse_networks(entries: Iterable[str]) -> tuple[list[Network], list[str]]:
    """(networks, problems) for ``TRUSTED_PROXIES`` entries (addresses or CIDR blocks)."""
    networks: list[Network] = []
    problems: list[str] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            problems.append(f"{entry!r} is not an IP address or CIDR block")
    return networks, problems


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


class ClientAddress:
    def __init__(self, trusted: Sequence[Network]) -> None:
        self.trusted = list(trusted)

    def _is_trusted(self, text: str) -> bool:
        address = _address(text)
        return address is not None and any(address in net for net in self.trusted)

    def of_scope(self, scope: Any) -> str:
        client = scope.get("client")
        peer = str(client[0]) if client else "unknown"
        if not self.trusted or not self._is_trusted(peer):
            return peer
        hops: list[str] = []
        for name, value in scope.get("headers", ()):
            if name == FORWARDED_FOR:
                hops.extend(value.decode("latin-1").split(","))
        client_address = peer
        for hop in reversed(hops):
            if _address(hop) is None:
                break
            client_address = hop.strip()
            if not self._is_trusted(client_address):
                break
        return client_address
