"""The SQLAlchemy URL for ``DB_TYPE``: built from the ``DB_*`` settings or ``DATABASE_URL``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from keel.config import Settings
from keel.config.sections.db import DbType

# DB_TYPE -> async driver name in the SQLAlchemy URL.
DRIVERS: dict[DbType, str] = {
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "mysql": "mysql+asyncmy",
    "oracle": "oracle+oracledb",
}
DEFAULT_PORTS: dict[DbType, int] = {"postgresql": 5432, "mysql": 3306, "oracle": 1521}
# DATABASE_URL schemes people write, mapped to the async driver Keel uses.
_SCHEME_ALIASES: dict[str, DbType] = {
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "postgresql+asyncpg": "postgresql",
    "sqlite": "sqlite",
    "sqlite+aiosqlite": "sqlite",
    "mysql": "mysql",
    "mariadb": "mysql",
    "mysql+asyncmy": "mysql",
    "mariadb+asyncmy": "mysql",
    "oracle": "oracle",
    "oracle+oracledb": "oracle",
}


class DatabaseUrlError(ValueError):
    """DATABASE_URL cannot be used; the message names the problem, never the password."""


@dataclass(frozen=True)
class DbTarget:
    """Where the service connects: enough to name it in a log line or an error."""

    type: DbType
    url: URL

    @property
    def host(self) -> str:
        return self.url.host or ""

    @property
    def port(self) -> int:
        return self.url.port or DEFAULT_PORTS.get(self.type, 0)

    @property
    def database(self) -> str:
        service = self.url.query.get("service_name")
        return self.url.database or (service if isinstance(service, str) else "")

    def describe(self) -> str:
        """``postgresql keel@db:5432/keel``: never contains the password."""
        if self.type == "sqlite":
            return f"sqlite {self.database or ':memory:'}"
        user = f"{self.url.username}@" if self.url.username else ""
        return f"{self.type} {user}{self.host}:{self.port}/{self.database}"


def _from_database_url(text: str) -> DbTarget:
    try:
        url = make_url(text)
    except Exception as exc:
        # The parser's message may quote the URL (with its password): say only what is wrong.
        raise DatabaseUrlError("DATABASE_URL is not a valid SQLAlchemy URL") from exc
    db_type = _SCHEME_ALIASES.get(url.drivername)
    if db_type is None:
        known = ", ".join(sorted(_SCHEME_ALIASES))
        raise DatabaseUrlError(
            f"DATABASE_URL scheme {url.drivername!r} is not supported; use one of: {known}"
        )
    return DbTarget(db_type, url.set(drivername=DRIVERS[db_type]))


def database_target(settings: Settings) -> DbTarget:
    """The database the service uses. ``DATABASE_URL`` wins over the ``DB_*`` parts."""
    db = settings.db
    if db.url:
        return _from_database_url(db.url.reveal())
    if db.type == "sqlite":
        path = db.database
        if path != ":memory:":
            path = str(settings.resolve_path(path))
        return DbTarget("sqlite", URL.create(DRIVERS["sqlite"], database=path))
    url = URL.create(
        DRIVERS[db.type],
        username=db.username or None,
        password=db.password.reveal() or None,
        host=db.host,
        port=db.port or DEFAULT_PORTS[db.type],
        # Oracle: DB_DATABASE is the service name (host:port/service).
        database=None if db.type == "oracle" else db.database,
        query={"service_name": db.database} if db.type == "oracle" and db.database else {},
    )
    return DbTarget(db.type, url)


def sqlite_path(target: DbTarget) -> Path | None:
    """The SQLite database file, or None for an in-memory database."""
    if target.type != "sqlite" or not target.database or target.database == ":memory:":
        return None
    return Path(target.database)
