"""#14 defect 4: Argon2 runs in a bounded thread pool, not on the event loop; a login flood
beyond the pool and its queue is shed with 503 + Retry-After instead of stalling the worker."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from keel.domain.users import services

pytestmark = pytest.mark.service


def in_background(request: Any) -> asyncio.Task[Any]:
    """The test client blocks its caller until the app answers; run a request from a thread
    of its own (own event loop), so the test can send another one meanwhile."""
    return asyncio.create_task(asyncio.to_thread(asyncio.run, request))


@pytest.fixture
def held_hash(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """verify_password that records its thread and waits until the test releases it."""
    state: dict[str, Any] = {
        "started": threading.Event(),
        "release": threading.Event(),
        "threads": [],
        "released": [],
    }
    real: Callable[[str | None, str], bool] = services.verify_password

    def held(stored: str | None, password: str) -> bool:
        state["threads"].append(threading.current_thread().name)
        state["started"].set()
        state["released"].append(state["release"].wait(timeout=5))
        return real(stored, password)

    monkeypatch.setattr(services, "verify_password", held)
    return state


async def test_other_requests_are_served_while_a_password_is_hashed(
    world: Any, held_hash: dict[str, Any]
) -> None:
    w, client = world
    login = in_background(
        client.post("/api/auth/login", json={"username": w.username, "password": "nope" * 4})
    )
    assert await asyncio.to_thread(held_hash["started"].wait, 10)  # the hash started, held
    live = await asyncio.wait_for(client.get("/health/live"), timeout=10)
    held_hash["release"].set()
    assert live.status_code == 200
    assert (await login).status_code == 401
    assert held_hash["released"] == [True]  # /health/live answered while the hash was held
    assert held_hash["threads"][0].startswith("password-hash")


async def test_logins_beyond_the_pool_and_queue_get_503_at_once(
    make_world: Any, held_hash: dict[str, Any]
) -> None:
    w, client = await make_world(AUTH_PASSWORD_HASH_THREADS="1", AUTH_PASSWORD_HASH_QUEUE="0")
    body = {"username": w.username, "password": "nope" * 4}
    first = in_background(client.post("/api/auth/login", json=body))
    assert await asyncio.to_thread(held_hash["started"].wait, 10)
    second = await asyncio.wait_for(client.post("/api/auth/login", json=body), timeout=10)
    held_hash["release"].set()
    assert second.status_code == 503, second.text
    assert second.headers["retry-after"] == "1"
    assert (await first).status_code == 401
