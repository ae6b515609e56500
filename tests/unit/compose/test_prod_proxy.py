"""#14 defect 5 at the edge: prod nginx rate-limits login itself and hands the API the client's
address in a header the API only believes from TRUSTED_PROXIES (the integration suite runs this
nginx for real; here the contract between the two files is pinned)."""

from __future__ import annotations

import re
from pathlib import Path

from keel.client_address import parse_networks

REPO = Path(__file__).resolve().parents[3]
NGINX = (REPO / "configs" / "prod" / "nginx.conf").read_text()


def _location(path: str) -> str:
    match = re.search(r"location = " + re.escape(path) + r" \{(.*?)\n    \}", NGINX, re.S)
    assert match, f"no exact location for {path}"
    return match.group(1)


def test_login_is_rate_limited_by_nginx() -> None:
    zone = re.search(r"limit_req_zone \$binary_remote_addr zone=(\w+):\d+m rate=(\d+)r/m;", NGINX)
    assert zone, "no per-address limit_req_zone"
    login = _location("/api/auth/login")
    assert f"limit_req zone={zone.group(1)}" in login
    assert "limit_req_status 429;" in NGINX


def test_nginx_overwrites_forwarded_for_and_the_api_trusts_only_private_ranges() -> None:
    assert "$proxy_add_x_forwarded_for" not in NGINX  # a client's own header is not passed on
    assert NGINX.count("proxy_set_header X-Forwarded-For $remote_addr;") == 2
    env = (REPO / "configs" / "prod" / "app.env").read_text()
    line = next(x for x in env.splitlines() if x.startswith("TRUSTED_PROXIES="))
    networks, problems = parse_networks(line.partition("=")[2].split(","))
    assert not problems
    assert all(net.is_private for net in networks)
