"""The database layer against real PostgreSQL and MariaDB: migrations, locks, connect errors."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

from keel.db.engine import connect_with_retries, sqlalchemy_config
from keel.db.errors import Cause
from keel.db.migrate import check_at_head, head_revision, migrate
from keel.db.url import database_target
from tests.service.conftest import KEEL, make_settings, process_env
from tests.service.servers import MariaDb, Postgres
from tests.support import free_port


async def _connect_error(env: dict[str, str]) -> str:
    settings = make_settings({**env, "DB_CONNECT_RETRIES": "1", "DB_CONNECT_TIMEOUT": "2"})
    config = sqlalchemy_config(settings, one_shot=True)
    engine = config.get_engine()
    try:
        error = await connect_with_retries(engine, database_target(settings), 1)
    finally:
        await engine.dispose()
    assert error is not None
    return str(error)


def test_migrate_applies_then_is_a_no_op(pg_empty_env: dict[str, str]) -> None:
    settings = make_settings(pg_empty_env)
    first = asyncio.run(migrate(settings))
    assert first.before is None
    assert first.after == head_revision()
    assert "0001_jobs" in first.applied
    second = asyncio.run(migrate(settings))
    assert second.applied == ()
    assert "already at head" in second.describe()


async def test_readiness_check_fails_while_behind_head(pg_empty_env: dict[str, str]) -> None:
    config = sqlalchemy_config(make_settings(pg_empty_env))
    engine = config.get_engine()
    try:
        with pytest.raises(RuntimeError, match="keel migrate"):
            await check_at_head(engine)
        await migrate(make_settings(pg_empty_env))
        await check_at_head(engine)
    finally:
        await engine.dispose()


async def test_readiness_accepts_a_newer_releases_schema(pg_empty_env: dict[str, str]) -> None:
    """A rolling update migrates before the old pods go: a revision the running code does not
    know is a newer release's, and the old pods stay ready; a known older one is not ready."""
    from sqlalchemy import text

    from keel.db.engine import VERSION_TABLE
    from keel.db.migrate import script_directory

    await migrate(make_settings(pg_empty_env))
    config = sqlalchemy_config(make_settings(pg_empty_env))
    engine = config.get_engine()
    older = [rev.revision for rev in script_directory().walk_revisions()][-1]
    try:
        for revision, ready in (("9999_from_a_newer_release", True), (older, False)):
            async with engine.begin() as connection:
                await connection.execute(
                    text(f"UPDATE {VERSION_TABLE} SET version_num = :rev"), {"rev": revision}
                )
            if ready:
                await check_at_head(engine)
            elif older != head_revision():
                with pytest.raises(RuntimeError, match=f"schema at {older}"):
                    await check_at_head(engine)
    finally:
        await engine.dispose()


def test_two_concurrent_migrates_one_applies_both_exit_zero(
    pg_empty_env: dict[str, str],
) -> None:
    import subprocess

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KEEL, "migrate"],
            env=process_env(pg_empty_env),
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: run(), range(2)))
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    outputs = [r.stdout + r.stderr for r in results]
    assert (
        sum(
            "applied 2 migration" in out or ("applied" in out and "0001_jobs" in out)
            for out in outputs
        )
        == 1
    ), outputs
    assert sum("already at head" in out for out in outputs) == 1, outputs


async def test_wrong_password_is_named(pg_server: Postgres) -> None:
    env = {**pg_server.env("keel_template"), "DB_PASSWORD": "not-the-password"}
    message = await _connect_error(env)
    assert Cause.AUTH.value in message
    assert f"port={pg_server.port}" in message
    assert "database=keel_template" in message
    assert "not-the-password" not in message


async def test_missing_database_is_named(pg_server: Postgres) -> None:
    message = await _connect_error(pg_server.env("no_such_db"))
    assert Cause.MISSING_DATABASE.value in message
    assert "database=no_such_db" in message


async def test_unreachable_server_is_named() -> None:
    port = free_port()
    env = {
        "DB_TYPE": "postgresql",
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(port),
        "DB_DATABASE": "keel",
        "DB_PASSWORD": "x",
    }
    message = await _connect_error(env)
    assert Cause.UNREACHABLE.value in message
    assert f"host=127.0.0.1 port={port}" in message


def test_mariadb_migrate_concurrently_and_errors(mariadb_server: MariaDb) -> None:
    env = mariadb_server.env(mariadb_server.create_database("keel_mysql"))

    async def both() -> list[str]:
        outcomes = await asyncio.gather(migrate(make_settings(env)), migrate(make_settings(env)))
        return [o.describe() for o in outcomes]

    described = asyncio.run(both())
    assert sum("already at head" in d for d in described) == 1, described
    wrong = asyncio.run(_connect_error({**env, "DB_PASSWORD": "wrong-password"}))
    assert Cause.AUTH.value in wrong
    missing = asyncio.run(_connect_error(mariadb_server.env("nope_db")))
    assert Cause.MISSING_DATABASE.value in missing
