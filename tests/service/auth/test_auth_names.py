"""Usernames and API key names are unique: the database refuses a second row with the same name
and the services report "already exists" (what `keel users create` and `keel apikeys create`
print)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from keel.auth.runtime import build_runtime
from keel.db.engine import sqlalchemy_config
from keel.domain.users.services import AlreadyExistsError, ApiKeyService, UserService

pytestmark = pytest.mark.service


async def test_a_taken_username_or_key_name_is_refused(world: Any) -> None:
    w, client = world
    engine = sqlalchemy_config(w.settings, one_shot=True).get_engine()
    cipher = build_runtime(w.settings).cipher
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            with pytest.raises(AlreadyExistsError, match=f"user '{w.username}' already exists"):
                await UserService(session, w.runtime.ids.ids).create(
                    w.username, "another password 123", []
                )
            key = await ApiKeyService(session).find_active(w.key_id)
            assert key is not None
            key_name = key.name
            with pytest.raises(AlreadyExistsError, match=f"API key '{key_name}' already exists"):
                await ApiKeyService(session, cipher, w.runtime.ids.ids).create(key_name, [])
    finally:
        await engine.dispose()
    # The failed inserts left the first rows alone: the user still logs in.
    login = {"username": w.username, "password": "correct horse battery staple"}
    assert (await client.post("/api/auth/login", json=login)).status_code == 200
