"""The auth attack suite's app: real PostgreSQL + Redis (tests/service/conftest.py starts them),
RS256 signing with an HS256 key being rotated out (the configuration where algorithm confusion
would bite), and low limits so throttling shows within a few requests."""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.support import REPO, no_secrets

from keel.config import Settings, load
from keel.runtime import Runtime

ROOT = REPO
OLD_HS_SECRET = "old-hmac-" + "q" * 40
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class PemPair:
    private: str
    public: str


def make_rsa() -> PemPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PemPair(private, public.decode())


@dataclass(frozen=True)
class Seeded:
    user_id: int
    username: str
    key_id: str
    key_secret: str
    admin_key_id: str
    admin_key_secret: str


@dataclass(frozen=True)
class AuthWorld(Seeded):
    settings: Settings
    app: Litestar
    runtime: Runtime
    rsa: PemPair


def auth_settings(backing: dict[str, str], rsa: PemPair, **extra: str) -> Settings:
    environ = {
        **backing,
        # Own Redis namespace per run: counters and nonces never leak between runs.
        "APP_NAME": f"keel-auth-{secrets.token_hex(4)}",
        "JWT_ALGORITHM": "RS256",
        "JWT_ALLOWED_ALGORITHMS": "RS256,HS256",
        "JWT_SIGNING_KEY_ID": "r1",
        "JWT_PRIVATE_KEY": rsa.private,
        "JWT_VERIFY_KEYS": json.dumps({"h0": {"alg": "HS256", "key": OLD_HS_SECRET}}),
        "API_KEY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
        "AUTH_LOGIN_FAILURES_PER_USER": "3",
        "AUTH_LOGIN_PER_IP_PER_MINUTE": "1000",
        "AUTH_SIGNATURE_FAILURES_PER_KEY": "5",
    }
    environ.update(extra)
    return load("test", root=ROOT, environ=environ, secrets_reader=no_secrets)


async def _seed(runtime: Runtime, settings: Settings) -> Seeded:
    """Rows for the suite, written through the services on an engine of this event loop.

    (The test client runs the app on its own loop; its pool cannot be used from here. The app's
    id generator is thread-safe and holds the node-id lease, so ids stay unique.)
    """
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from keel.auth.runtime import build_runtime
    from keel.db.engine import sqlalchemy_config
    from keel.domain.users.services import ApiKeyService, UserService

    cipher = build_runtime(settings).cipher
    ids = runtime.ids.ids
    engine = sqlalchemy_config(settings, one_shot=True).get_engine()
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            user = await UserService(session, ids).create(
                f"alice-{secrets.token_hex(3)}", PASSWORD, ["admin"]
            )
            key, secret = await ApiKeyService(session, cipher, ids).create(
                f"svc-{secrets.token_hex(3)}", []
            )
            admin_key, admin_secret = await ApiKeyService(session, cipher, ids).create(
                f"svc-admin-{secrets.token_hex(3)}", ["admin"]
            )
            await session.commit()
            return Seeded(
                user.id, user.username, key.key_id, secret, admin_key.key_id, admin_secret
            )
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def rsa_key() -> PemPair:
    return make_rsa()


@pytest.fixture
async def make_world(
    pg_env: dict[str, str], redis_env: dict[str, str], rsa_key: PemPair
) -> AsyncIterator[Callable[..., Any]]:
    """Builds apps on this test's fresh migrated database and flushed Redis (shared fixtures)."""
    from keel.app import api_runtime, create_app

    clients: list[AsyncTestClient[Litestar]] = []

    async def build(**extra: str) -> tuple[AuthWorld, AsyncTestClient[Litestar]]:
        settings = auth_settings({**pg_env, **redis_env}, rsa_key, **extra)
        runtime = api_runtime(settings)
        app = create_app(settings, runtime=runtime)
        client = AsyncTestClient(app, raise_server_exceptions=False)
        await client.__aenter__()
        clients.append(client)
        seeded = await _seed(runtime, settings)
        world = AuthWorld(
            settings=settings, app=app, runtime=runtime, rsa=rsa_key, **dataclasses.asdict(seeded)
        )
        return world, client

    yield build
    for client in clients:
        await client.__aexit__(None, None, None)


@pytest.fixture
async def world(make_world: Callable[..., Any]) -> tuple[AuthWorld, AsyncTestClient[Litestar]]:
    return await make_world()  # type: ignore[no-any-return]
