"""#14 defects 2 and 5 through a real `keel serve` behind a (simulated) trusted proxy:
login attempts are counted before the hash check, so a burst cannot race past the limit, and
neither five guesses nor a key id let an attacker lock anyone else out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.service.conftest import FAST_TIMINGS, Proc, new_pg_env, new_redis_env, spawner
from tests.service.live_api import PASSWORD, LiveApi, start_live_api
from tests.service.servers import Postgres, RedisServer

from keel.auth.signatures import sign_request

pytestmark = pytest.mark.service

LIMITS = {
    "TRUSTED_PROXIES": "127.0.0.1/32",
    "AUTH_LOGIN_PER_IP_PER_MINUTE": "1000",
    "AUTH_LOGIN_FAILURES_PER_USER": "3",
    "AUTH_LOGIN_ATTEMPTS_PER_ACCOUNT": "6",
    "AUTH_LOGIN_BACKOFF_MAX_SECONDS": "2",
    "AUTH_SIGNATURE_FAILURES_PER_KEY": "3",
}


@pytest.fixture(scope="module")
def module_env(pg_server: Postgres, redis_server: RedisServer) -> dict[str, str]:
    return {**new_pg_env(pg_server), **new_redis_env(redis_server), **FAST_TIMINGS}


@pytest.fixture(scope="module")
def live(module_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    """One server for the module: each test guesses from its own client addresses."""
    logs = tmp_path_factory.mktemp("throttling")
    with spawner(logs) as spawn:
        yield start_live_api(spawn, {**module_env, **LIMITS}, logs)


def _from(client_ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": f"203.0.113.77, {client_ip}"}


async def _login(http: httpx.AsyncClient, live: LiveApi, password: str, ip: str) -> Any:
    body = {"username": live.username, "password": password}
    return await http.post("/api/auth/login", json=body, headers=_from(ip))


async def test_concurrent_wrong_logins_cannot_race_past_the_limit(live: LiveApi) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as http:
        burst = await asyncio.gather(
            *(_login(http, live, "wrong password!", "10.0.0.1") for _ in range(16))
        )
        codes = sorted(r.status_code for r in burst)
        assert codes.count(401) == 3, codes  # exactly the limit reached the password check
        assert codes.count(429) == 13, codes
        assert all(int(r.headers["retry-after"]) >= 1 for r in burst if r.status_code == 429)
        # The right password from the guessing client is refused too: no oracle.
        assert (await _login(http, live, PASSWORD, "10.0.0.1")).status_code == 429
        # The owner, from anywhere else, is not locked out.
        owner = await _login(http, live, PASSWORD, "10.0.0.2")
        assert owner.status_code == 200, owner.text


async def test_many_clients_slow_an_account_but_never_lock_it(live: LiveApi) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as http:
        codes = [
            (await _login(http, live, "wrong password!", f"10.1.0.{i}")).status_code
            for i in range(10)
        ]
        assert codes[:6] == [401] * 6, codes  # one guess each, up to the account's soft limit
        assert 429 in codes[6:], codes  # then slowed down
        refused = await _login(http, live, PASSWORD, "10.1.0.200")
        if refused.status_code == 429:
            retry_after = int(refused.headers["retry-after"])
            assert 1 <= retry_after <= 2  # AUTH_LOGIN_BACKOFF_MAX_SECONDS: slowed, not locked
            await asyncio.sleep(retry_after + 0.2)
        owner = await _login(http, live, PASSWORD, "10.1.0.200")
        assert owner.status_code == 200, owner.text


def _signed(live: LiveApi, secret: str, ip: str) -> dict[str, str]:
    headers = sign_request(key_id=live.key_id, secret=secret, method="GET", path="/api/auth/whoami")
    return {**headers, **_from(ip)}


async def test_a_key_id_alone_cannot_lock_the_service_out(live: LiveApi) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as http:
        attacker = [
            (
                await http.get("/api/auth/whoami", headers=_signed(live, "x" * 43, "10.2.0.1"))
            ).status_code
            for _ in range(6)
        ]
        assert attacker == [401, 401, 401, 429, 429, 429], attacker
        # The attacker's client is throttled even with a valid signature...
        valid_from_attacker = _signed(live, live.key_secret, "10.2.0.1")
        assert (await http.get("/api/auth/whoami", headers=valid_from_attacker)).status_code == 429
        # ...the service itself, from its own address, is not.
        service = await http.get(
            "/api/auth/whoami", headers=_signed(live, live.key_secret, "10.2.0.2")
        )
        assert service.status_code == 200, service.text


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(
    stack_env: dict[str, str], spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    untrusted = {**LIMITS, "TRUSTED_PROXIES": "192.0.2.0/24"}  # not the test's 127.0.0.1
    live = start_live_api(spawn, {**stack_env, **untrusted}, tmp_path, username="bob")
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as http:
        # A different X-Forwarded-For each time: one bucket all the same (the real peer).
        codes = [
            (await _login(http, live, "wrong password!", f"10.3.0.{i}")).status_code
            for i in range(5)
        ]
    assert codes == [401, 401, 401, 429, 429], codes
    assert time.monotonic() - started < 30
