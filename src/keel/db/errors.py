"""Why a connection failed, in the words an operator needs: auth, missing database, unreachable."""

from __future__ import annotations

import enum

from keel.db.url import DbTarget


class Cause(enum.Enum):
    AUTH = "authentication failed (wrong user or password)"
    MISSING_DATABASE = "the database does not exist"
    UNREACHABLE = "server unreachable"
    OTHER = "connection failed"

    @property
    def retryable(self) -> bool:
        # Waiting fixes a server that is starting or restarting, never a wrong password.
        return self in (Cause.UNREACHABLE, Cause.OTHER)


# PostgreSQL SQLSTATEs, MySQL/MariaDB error numbers, Oracle codes.
_PG_AUTH = {"28P01", "28000"}
_PG_MISSING_DB = {"3D000"}
_PG_STARTING = {"57P03"}  # the database system is starting up
_MYSQL_AUTH = {1044, 1045, 1698}
_MYSQL_MISSING_DB = {1049}
_MYSQL_UNREACHABLE = {2002, 2003, 2005, 2006, 2013}
_ORA_AUTH = ("ORA-01017", "ORA-28000")
_ORA_MISSING = ("ORA-12514", "DPY-6001", "DPY-4027")
_ORA_UNREACHABLE = ("DPY-6005", "ORA-12541", "DPY-4011")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        orig = getattr(current, "orig", None)
        current = (
            orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
        )
    return seen


def classify(exc: BaseException) -> Cause:
    for err in _chain(exc):
        sqlstate = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if sqlstate in _PG_AUTH:
            return Cause.AUTH
        if sqlstate in _PG_MISSING_DB:
            return Cause.MISSING_DATABASE
        if sqlstate in _PG_STARTING:
            return Cause.UNREACHABLE
        args = getattr(err, "args", ())
        code = args[0] if args and isinstance(args[0], int) else None
        if code in _MYSQL_AUTH:
            return Cause.AUTH
        if code in _MYSQL_MISSING_DB:
            return Cause.MISSING_DATABASE
        if code in _MYSQL_UNREACHABLE:
            return Cause.UNREACHABLE
        text = str(err)
        if any(marker in text for marker in _ORA_AUTH):
            return Cause.AUTH
        if any(marker in text for marker in _ORA_MISSING):
            return Cause.MISSING_DATABASE
        if any(marker in text for marker in _ORA_UNREACHABLE):
            return Cause.UNREACHABLE
        if isinstance(err, (OSError, TimeoutError, ConnectionError)):
            return Cause.UNREACHABLE
        if "password authentication failed" in text:
            return Cause.AUTH
        if "does not exist" in text and "database" in text:
            return Cause.MISSING_DATABASE
        if "Connection refused" in text or "connection was closed" in text:
            return Cause.UNREACHABLE
    return Cause.OTHER


def _first_line(exc: BaseException) -> str:
    # The innermost driver message is the useful one; SQLAlchemy's wrapper adds SQL and links.
    for err in reversed(_chain(exc)):
        text = str(err).strip()
        if text:
            return f"{type(err).__name__}: {text.splitlines()[0]}"
    return type(exc).__name__


class DatabaseConnectError(Exception):
    """One line: what, where (host, port, database), why. Never the password."""

    def __init__(self, target: DbTarget, cause: Cause, detail: str, attempts: int) -> None:
        self.target = target
        self.cause = cause
        self.attempts = attempts
        where = (
            f"file {target.database}"
            if target.type == "sqlite"
            else f"host={target.host} port={target.port} database={target.database}"
        )
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(
            f"cannot connect to {target.type} ({where}){tries}: {cause.value} [{detail}]"
        )


def connect_error(target: DbTarget, exc: BaseException, attempts: int) -> DatabaseConnectError:
    return DatabaseConnectError(target, classify(exc), _first_line(exc), attempts)
