"""keel.client_address: X-Forwarded-For only from trusted proxies, read from the right."""

from __future__ import annotations

import pytest

from keel.client_address import ClientAddress, parse_networks


def scope(peer: str, forwarded: str | None = None) -> dict[str, object]:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    return {"client": (peer, 4242), "headers": headers}


PROXIES = ClientAddress(parse_networks(["10.0.0.0/8", "fd00::/8"])[0])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # untrusted peer: header ignored
        ("10.0.0.5", "198.51.100.7", "198.51.100.7"),
        ("10.0.0.5", "1.1.1.1, 198.51.100.7", "198.51.100.7"),  # spoofed left part ignored
        ("10.0.0.5", "198.51.100.7, 10.0.0.9", "198.51.100.7"),  # chained proxies skipped
        ("10.0.0.5", "garbage, 10.0.0.9", "10.0.0.9"),  # stops at the last good hop
        ("10.0.0.5", None, "10.0.0.5"),
        ("fd00::1", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_address(peer: str, forwarded: str | None, expected: str) -> None:
    assert PROXIES.of_scope(scope(peer, forwarded)) == expected


def test_no_trusted_proxies_means_the_peer() -> None:
    assert ClientAddress([]).of_scope(scope("10.0.0.5", "1.2.3.4")) == "10.0.0.5"


def test_bad_entries_are_reported() -> None:
    _, problems = parse_networks(["10.0.0.0/8", "nginx", "300.1.1.1"])
    assert problems == [
        "'nginx' is not an IP address or CIDR block",
        "'300.1.1.1' is not an IP address or CIDR block",
    ]
