"""What the operator commands on accounts (``keel users …``, ``keel apikeys …``) share.

They must answer in well under a second and a half, so they stay off the web framework and
advanced-alchemy: a plain SQLAlchemy engine without a pool, the same connect policy as the app
(:func:`keel.db.engine.connect_with_retries`, one line naming host, port and database on
failure), and snowflake ids from :mod:`keel.ids` (a node id leased in Redis for as long as the
command runs, as every replica does).

Passwords never come from argv (other users see it in ``ps``, shells keep it in history): they
are read from a prompt, or from ``--password-file FILE`` (``-`` = one line on stdin).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from keel.config import ENVIRONMENTS, Settings, load

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from keel.ids import Snowflake


class CommandError(Exception):
    """One line for stderr; exit code 1."""


def add_env_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", choices=ENVIRONMENTS, help="default: $APP_ENV or local")


def add_password_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-file",
        type=Path,
        help="read the password from this file ('-' = stdin); default: prompt twice",
    )


def read_password(path: Path | None) -> str:
    from keel.domain.users.passwords import password_problem

    if path is not None:
        try:
            text = sys.stdin.readline() if str(path) == "-" else path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read --password-file {path}: {exc.strerror}") from None
        password = text.rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise CommandError(
                "no terminal to prompt on: use --password-file FILE (or - for stdin)"
            )
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise CommandError("the two passwords differ")
    problem = password_problem(password)
    if problem is not None:
        raise CommandError(problem)
    return password


@dataclass
class Accounts:
    """An open database (sessions) and, when the command creates rows, an id source."""

    sessions: async_sessionmaker[AsyncSession]
    ids: Snowflake | None


def _missing_schema(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(
        marker in text
        for marker in ("no such table", "does not exist", "doesn't exist", "ora-00942")
    )


@asynccontextmanager
async def _ids(settings: Settings) -> AsyncIterator[Snowflake]:
    from keel.ids import NodeLease, Snowflake

    worker = settings.worker
    fixed = worker.ids_node_id
    if fixed < 0 and settings.redis.backend == "memory":
        fixed = 0
    ids = Snowflake(
        fixed if fixed >= 0 else None,
        epoch_ms=worker.ids_epoch_ms,
        max_skew_ms=worker.ids_max_clock_skew_ms,
    )
    if fixed >= 0:
        yield ids
        return
    from keel.redis_conn import make_client, redis_where

    client = make_client(settings)
    lease = NodeLease(client, settings.redis.key_prefix, worker.ids_lease_ttl, owner="cli")
    try:
        try:
            ids.set_node(await lease.claim(), None)
        except Exception as exc:  # noqa: BLE001 - reported as one line
            raise CommandError(
                f"cannot lease a snowflake node id from Redis at {redis_where(settings)}: {exc}"
            ) from None
        yield ids
    finally:
        try:
            await lease.release()
        finally:
            await client.aclose()


@asynccontextmanager
async def open_accounts(settings: Settings, *, creates_rows: bool) -> AsyncIterator[Accounts]:
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from keel.db.engine import connect_with_retries, one_shot_engine
    from keel.db.url import database_target

    target = database_target(settings)
    engine = one_shot_engine(settings, target)
    try:
        error = await connect_with_retries(engine, target, settings.db.connect_retries)
        if error is not None:
            raise CommandError(str(error))
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        try:
            if creates_rows:
                async with _ids(settings) as ids:
                    yield Accounts(sessions, ids)
            else:
                yield Accounts(sessions, None)
        except DBAPIError as exc:
            if _missing_schema(exc):
                raise CommandError(
                    f"the database ({target.describe()}) has no accounts tables yet: "
                    "run `uv run keel migrate` first"
                ) from None
            raise
    finally:
        await engine.dispose()


def run_command(
    env: str | None,
    work: Callable[[Settings], Coroutine[Any, Any, None]],
) -> int:
    """Load settings, run ``work``; errors an operator can act on are one line, exit 1."""
    from loguru import logger

    from keel.domain.users.services import AlreadyExistsError

    # Only problems on stderr: the output is the one line (or the key) the operator needs.
    logger.remove()
    logger.add(sys.stderr, level="WARNING", format="{level}: {message}")
    settings = load(env)
    try:
        asyncio.run(work(settings))
    except (CommandError, AlreadyExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for line in [headers, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        print("  ".join(cells).rstrip())


def when(value: Any) -> str:
    """A timestamp as operators read it: UTC, to the second."""
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "-"


class Account(Protocol):
    """What users and API keys both have: roles, an active flag, a creation time."""

    roles: list[str]
    is_active: bool
    created_at: dt.datetime


# The columns that end every account listing (``keel users list``, ``keel apikeys list``).
ACCOUNT_HEADERS = ("ROLES", "ACTIVE", "CREATED")


def account_cells(account: Account) -> list[str]:
    """An account's ACCOUNT_HEADERS cells in a listing's table."""
    return [
        ",".join(account.roles) or "-",
        "yes" if account.is_active else "no",
        when(account.created_at),
    ]


def account_json(account: Account) -> dict[str, Any]:
    """The same three facts for a listing's ``--json`` array."""
    return {
        "roles": list(account.roles),
        "active": account.is_active,
        "created_at": account.created_at.isoformat(),
    }
