"""URL building and dialect selection per DB_TYPE (Oracle included: no server runs here)."""

from __future__ import annotations

import pytest
from tests.support import REPO, settings_for

from keel.db.engine import engine_config, sqlalchemy_config
from keel.db.errors import Cause, classify, connect_error
from keel.db.url import DatabaseUrlError, database_target


def settings(**env: str):  # type: ignore[no-untyped-def]
    return settings_for("local", env)


@pytest.mark.parametrize(
    ("db_type", "driver", "port"),
    [
        ("postgresql", "postgresql+asyncpg", 5432),
        ("mysql", "mysql+asyncmy", 3306),
        ("oracle", "oracle+oracledb", 1521),
    ],
)
def test_url_from_db_parts(db_type: str, driver: str, port: int) -> None:
    target = database_target(
        settings(
            DB_TYPE=db_type,
            DB_HOST="db",
            DB_USERNAME="app",
            DB_PASSWORD="p@ss:w/rd",
            DB_DATABASE="keel",
        )
    )
    assert target.url.drivername == driver
    assert target.port == port
    assert target.database == "keel"
    assert target.url.password == "p@ss:w/rd"
    assert "p@ss" not in target.describe()
    assert target.describe() == f"{db_type} app@db:{port}/keel"


def test_oracle_uses_the_service_name() -> None:
    target = database_target(settings(DB_TYPE="oracle", DB_HOST="ora", DB_DATABASE="FREEPDB1"))
    assert target.url.query["service_name"] == "FREEPDB1"
    rendered = target.url.render_as_string(hide_password=True)
    assert rendered == "oracle+oracledb://keel@ora:1521?service_name=FREEPDB1"
    # The dialect loads (python-oracledb is installed) without a server.
    engine = sqlalchemy_config(settings(DB_TYPE="oracle", DB_HOST="ora")).get_engine()
    assert engine.dialect.name == "oracle"
    assert engine.dialect.driver == "oracledb"


def test_sqlite_path_is_relative_to_the_config_root() -> None:
    target = database_target(settings(DB_DATABASE="var/x.db"))
    assert target.url.drivername == "sqlite+aiosqlite"
    assert target.database == str(REPO / "var" / "x.db")


@pytest.mark.parametrize(
    ("url", "db_type"),
    [
        ("postgres://u:p@h/d", "postgresql"),
        ("postgresql+asyncpg://u:p@h:6543/d", "postgresql"),
        ("mariadb://u:p@h/d", "mysql"),
        ("mysql://u:p@h/d", "mysql"),
        ("oracle://u:p@h:1522/?service_name=S", "oracle"),
        ("sqlite:///tmp/x.db", "sqlite"),
    ],
)
def test_database_url_wins_and_maps_to_async_drivers(url: str, db_type: str) -> None:
    target = database_target(settings(DATABASE_URL=url, DB_TYPE="sqlite"))
    assert target.type == db_type


def test_bad_database_url_never_echoes_the_password() -> None:
    with pytest.raises(DatabaseUrlError, match="not supported") as info:
        database_target(settings(DATABASE_URL="mongodb://u:secretpw@h/d"))
    assert "secretpw" not in str(info.value)


def test_pool_settings_reach_the_engine() -> None:
    s = settings(
        DB_TYPE="postgresql",
        DB_POOL_SIZE="7",
        DB_MAX_OVERFLOW="3",
        DB_POOL_RECYCLE="60",
        DB_POOL_TIMEOUT="9",
    )
    config = engine_config(s, database_target(s))
    assert (config.pool_size, config.max_overflow, config.pool_recycle, config.pool_timeout) == (
        7,
        3,
        60,
        9,
    )


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__("pg")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (_PgError("28P01"), Cause.AUTH),
        (_PgError("3D000"), Cause.MISSING_DATABASE),
        (ConnectionRefusedError(111, "Connection refused"), Cause.UNREACHABLE),
        (Exception(1045, "Access denied for user 'keel'"), Cause.AUTH),
        (Exception(1049, "Unknown database 'x'"), Cause.MISSING_DATABASE),
        (Exception(2003, "Can't connect"), Cause.UNREACHABLE),
        (Exception("ORA-01017: invalid username/password"), Cause.AUTH),
        (Exception("DPY-6005: cannot connect to database"), Cause.UNREACHABLE),
        (ValueError("something else"), Cause.OTHER),
    ],
)
def test_connect_errors_are_classified(error: Exception, cause: Cause) -> None:
    assert classify(error) is cause


def test_wrapped_errors_are_classified_through_the_chain() -> None:
    try:
        try:
            raise _PgError("28P01")
        except _PgError as inner:
            raise RuntimeError("wrapper") from inner
    except RuntimeError as outer:
        error = connect_error(
            database_target(settings(DB_TYPE="postgresql", DB_HOST="h", DB_DATABASE="d")), outer, 3
        )
    assert error.cause is Cause.AUTH
    assert "host=h port=5432 database=d" in str(error)
    assert "after 3 attempts" in str(error)
    assert not Cause.AUTH.retryable
    assert Cause.UNREACHABLE.retryable
