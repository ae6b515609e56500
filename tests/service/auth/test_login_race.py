"""#14 defect 2 at the service layer, where the interleaving is certain: sixteen concurrent
wrong logins against real PostgreSQL + Redis, each waiting on the database between the limit
check and the hash. Only the limit's worth may reach the password check."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from keel.auth.errors import CredentialError, ThrottledError
from keel.auth.runtime import build_runtime
from keel.db.engine import sqlalchemy_config
from keel.domain.users.services import SessionService, UserService
from keel.redis_conn import make_client
from keel.stores import build_store_registry

pytestmark = pytest.mark.service
PASSWORD = "correct horse battery staple"  # same as conftest


async def test_concurrent_wrong_logins_reach_the_hash_at_most_limit_times(world: Any) -> None:
    w, _ = world
    runtime = build_runtime(w.settings)
    redis = make_client(w.settings)
    limits = build_store_registry(w.settings.app.name, redis).get("rate_limit")
    engine = sqlalchemy_config(w.settings, one_shot=True).get_engine()
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def attempt(password: str, client: str) -> int:
        async with sessions() as session:
            service = SessionService(runtime, UserService(session))
            try:
                await service.login(w.username, password, limits, client)
            except CredentialError:
                return 401
            except ThrottledError:
                return 429
            return 200

    try:
        # Fifteen guesses and, among them, the right password: under the old check-then-count
        # every one reached the hash and the right one logged in past the limit.
        burst = [attempt("wrong password!", "198.51.100.1") for _ in range(15)]
        burst.insert(8, attempt(PASSWORD, "198.51.100.1"))
        codes = await asyncio.gather(*burst)
        reached_the_hash = codes.count(401) + codes.count(200)
        assert reached_the_hash == 3, codes  # AUTH_LOGIN_FAILURES_PER_USER=3
        assert codes.count(429) == 13, codes
        if 200 not in codes:
            # Three wrong guesses reached the hash: this client is locked out now. (When the
            # right password was among the three, its success reset the client's counter.)
            assert await attempt(PASSWORD, "198.51.100.1") == 429
        assert await attempt(PASSWORD, "198.51.100.2") == 200  # the owner elsewhere: fine
    finally:
        await engine.dispose()
        await redis.aclose()
