"""Column types shared by the domains.

``JsonDocument`` is JSONB on PostgreSQL, JSON on MySQL/MariaDB/SQLite and a CLOB of JSON text on
Oracle. (advanced-alchemy's ``JsonB`` builds an Oracle check constraint with an API SQLAlchemy
2.1 removed, so it cannot be used with the SQLAlchemy this project locks.)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from sqlalchemy import JSON, DateTime, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class _JsonText(TypeDecorator[Any]):
    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else msgspec.json.encode(value).decode()

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else msgspec.json.decode(value)


JsonDocument = JSON().with_variant(JSONB(), "postgresql").with_variant(_JsonText(), "oracle")


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC timestamps on every dialect, with microseconds on MySQL/MariaDB too.

    Stored as UTC; a naive value is refused (it has no known zone), and what a dialect without
    time zones hands back is marked UTC. (advanced-alchemy's ``DateTimeUTC`` does the same; it
    is not imported because that costs seconds per operator command.)
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[dt.datetime]:
        return dt.datetime

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise TypeError("a timestamp without a time zone cannot be stored as UTC")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(self.impl)
