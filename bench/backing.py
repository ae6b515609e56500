"""Throwaway PostgreSQL + Redis for a benchmark (the servers of tests/service/servers.py), and
the environment a Keel process needs to use them. Shared by the bench scripts that hit the
database."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def postgres_and_redis(
    redis_root: Path, database: str = "bench", *, durable: bool = True
) -> Iterator[dict[str, str]]:
    """Start PostgreSQL (with an empty ``database``) and a Redis keeping its files in
    ``redis_root``; yield the DB_* and REDIS_* settings naming them; stop and remove them.

    ``durable`` (the default): PostgreSQL with its production durability (fsync, synchronous
    commit and full-page writes on, the defaults); the settings in force are printed."""
    from tests.service.servers import Postgres, RedisServer

    pg, redis = Postgres(durable=durable), RedisServer(redis_root)
    pg.init()
    pg.start()
    redis.start()
    try:
        shown = pg.psql(
            "postgres",
            "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings "
            "WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method')",
        ).stdout.strip()
        label = "durable" if durable else "NOT DURABLE (test settings)"
        print(f"PostgreSQL {label}: {shown}; data on {pg.root}", flush=True)
        yield pg.env(pg.create_database(database)) | redis.env()
    finally:
        redis.stop()
        pg.stop()
        pg.cleanup()


def local_env(backing: Mapping[str, str], settings: Mapping[str, str]) -> dict[str, str]:
    """The backing servers' settings, a quiet local env of this checkout, then ``settings``."""
    return {
        **backing,
        "APP_ENV": "local",
        "KEEL_ROOT": str(ROOT),
        "DEBUG": "false",
        "LOG_FORMAT": "json",
        **settings,
    }


def keel_env(backing: Mapping[str, str], settings: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of a bench's ``keel`` process: this one's minus any DB_/REDIS_
    settings (the backing servers' replace them), then :func:`local_env`."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "REDIS_"))}
    return inherited | local_env(backing, settings)


def signing_api_env(backing: Mapping[str, str]) -> dict[str, str]:
    """:func:`local_env` for a bench that loads the API (and its database pool) from wrk's 32
    connections with JWTs it signs itself."""
    return local_env(
        backing,
        {
            "LOG_LEVEL": "WARNING",
            "HTTP_ACCESS_LOG": "false",
            "DB_POOL_SIZE": "40",
            "DB_MAX_OVERFLOW": "0",
            # The bench signs its own token: server and bench must share the key.
            "JWT_SECRET_KEY": os.urandom(32).hex(),
        },
    )


def keel_settings(env: Mapping[str, str]) -> Any:
    """Keel's settings for ``env`` (local config of this checkout, no secrets file)."""
    from keel.config import load

    return load("local", root=ROOT, environ=dict(env), secrets_reader=lambda *a: {})


def bench_token(env: Mapping[str, str]) -> str:
    """An access JWT for user 1, signed with ``env``'s key (see :func:`signing_api_env`)."""
    from keel.auth.runtime import build_runtime

    token: str = build_runtime(keel_settings(env)).jwt.issue("1", "access", name="bench").token
    return token
