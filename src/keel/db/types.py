"""Column types shared by the domains.

``JsonDocument`` is JSONB on PostgreSQL, JSON on MySQL/MariaDB/SQLite and a CLOB of JSON text on
Oracle. (advanced-alchemy's ``JsonB`` builds an Oracle check constraint with an API SQLAlchemy
2.1 removed, so it cannot be used with the SQLAlchemy this project locks.)
"""

from __future__ import annotations

from typing import Any

import msgspec
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, Text
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


class UtcDateTime(DateTimeUTC):
    """Timezone-aware UTC timestamps, with microseconds on MySQL/MariaDB too."""

    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(self.impl)
