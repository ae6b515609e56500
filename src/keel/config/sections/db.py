"""The database: engine choice, connection, pool and startup retries."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from keel.config.types import SecretStr

DbType = Literal["sqlite", "postgresql", "mysql", "oracle"]


class DbSettings(msgspec.Struct, frozen=True, kw_only=True):
    type: DbType = msgspec.field(default="sqlite", name="DB_TYPE")
    host: str = msgspec.field(default="127.0.0.1", name="DB_HOST")
    # 0 means the engine's usual port (5432, 3306, 1521).
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = msgspec.field(default=0, name="DB_PORT")
    username: str = msgspec.field(default="keel", name="DB_USERNAME")
    password: SecretStr = msgspec.field(default=SecretStr(""), name="DB_PASSWORD")
    # For sqlite: the database file path (relative paths are from the config root).
    database: str = msgspec.field(default="var/keel.db", name="DB_DATABASE")
    # A full SQLAlchemy URL overrides the DB_* parts above. It may carry a password: secret.
    url: SecretStr = msgspec.field(default=SecretStr(""), name="DATABASE_URL")
    pool_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = msgspec.field(
        default=5, name="DB_POOL_SIZE"
    )
    max_overflow: int = msgspec.field(default=10, name="DB_MAX_OVERFLOW")
    # PostgreSQL: connections of the driver-level pool the hottest statements use
    # (keel.db.direct), on top of DB_POOL_SIZE + DB_MAX_OVERFLOW; 0 = none (all via SQLAlchemy).
    direct_pool_size: Annotated[int, msgspec.Meta(ge=0, le=1000)] = msgspec.field(
        default=5, name="DB_DIRECT_POOL_SIZE"
    )
    pool_timeout: float = msgspec.field(default=30.0, name="DB_POOL_TIMEOUT")
    pool_recycle: int = msgspec.field(default=1800, name="DB_POOL_RECYCLE")
    connect_timeout: float = msgspec.field(default=5.0, name="DB_CONNECT_TIMEOUT")
    connect_retries: Annotated[int, msgspec.Meta(ge=0, le=100)] = msgspec.field(
        default=5, name="DB_CONNECT_RETRIES"
    )
    echo: bool = msgspec.field(default=False, name="DB_ECHO")
    # On: a round trip per pool checkout to test the connection first. Off: a connection a DB
    # restart killed fails one statement, then the pool replaces it.
    pool_pre_ping: bool = msgspec.field(default=False, name="DB_POOL_PRE_PING")
    # Off: an unreachable DB at start is logged and reported by /health/ready (the pool connects
    # once it is back). On: the process exits after the retries. A wrong password or a missing
    # database always ends the start: waiting does not fix those.
    required_at_start: bool = msgspec.field(default=False, name="DB_REQUIRED_AT_START")
    # How long `keel migrate` waits for another migrator's lock before giving up.
    migrate_lock_timeout: float = msgspec.field(default=300.0, name="DB_MIGRATE_LOCK_TIMEOUT")
