"""``keel users create USERNAME [--admin]`` and ``keel apikeys create NAME``.

Passwords never come from argv (other users see it in ``ps``, shells keep it in history): they
are read from a prompt, or from ``--password-file FILE`` (``-`` = one line on stdin). An API
key's secret is printed once, at creation; only its ciphertext is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from loguru import logger

from keel.config import ENVIRONMENTS, Settings, load
from keel.domain.users.passwords import password_problem
from keel.domain.users.services import ADMIN_ROLE, AlreadyExistsError, ApiKeyService, UserService
from keel.lifecycle import ResourceStack, StartupError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from keel.ids import Snowflake

T = TypeVar("T")


class CommandError(Exception):
    """One line for stderr; exit code 1."""


def register(subparsers: Any) -> None:
    users = subparsers.add_parser("users", help="manage users (people who log in)")
    users_sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    create = users_sub.add_parser("create", help="create a user (password from prompt or file)")
    create.add_argument("username")
    create.add_argument("--admin", action="store_true", help="give the user the admin role")
    create.add_argument(
        "--password-file",
        type=Path,
        help="read the password from this file ('-' = stdin); default: prompt twice",
    )
    create.add_argument("--env", choices=ENVIRONMENTS, help="default: $APP_ENV or local")
    create.set_defaults(handler=run_users_create)

    apikeys = subparsers.add_parser("apikeys", help="manage API keys (services that sign requests)")
    apikeys_sub = apikeys.add_subparsers(dest="apikeys_command", metavar="ACTION", required=True)
    key = apikeys_sub.add_parser("create", help="create an API key; prints its secret once")
    key.add_argument("name")
    key.add_argument("--role", action="append", default=[], help="a role for the key (repeat)")
    key.add_argument("--json", action="store_true", help="print {key_id, secret, name} as JSON")
    key.add_argument("--env", choices=ENVIRONMENTS, help="default: $APP_ENV or local")
    key.set_defaults(handler=run_apikeys_create)
    disable = apikeys_sub.add_parser("disable", help="stop an API key from signing requests")
    disable.add_argument("name")
    disable.add_argument("--env", choices=ENVIRONMENTS, help="default: $APP_ENV or local")
    disable.set_defaults(handler=run_apikeys_disable)


def read_password(path: Path | None) -> str:
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


class Rows:
    """What creating rows needs: the database's sessions and the id generator."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ids: Snowflake) -> None:
        self.sessions = sessions
        self.ids = ids


async def _with_resources(settings: Settings, work: Callable[[Rows], Awaitable[T]]) -> T:
    """Start what creating rows needs (database, Redis for the id lease, ids), run, stop."""
    from keel.db.database import Database
    from keel.ids import IdsResource
    from keel.redis_client import RedisResource

    database = Database(settings)
    redis = RedisResource(settings) if settings.redis.backend == "redis" else None
    ids = IdsResource(settings, redis)
    stack = ResourceStack([database, ids])
    await stack.start()
    try:
        return await work(Rows(database.sessions, ids.ids))
    finally:
        await stack.stop()


def _run(env: str | None, work: Callable[[Settings], T]) -> int:
    # Only problems on stderr: the output is the one line (or the key) the operator needs.
    logger.remove()
    logger.add(sys.stderr, level="WARNING", format="{level}: {message}")
    try:
        work(load(env))
    except (CommandError, AlreadyExistsError, StartupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def run_users_create(args: argparse.Namespace) -> int:
    def work(settings: Settings) -> None:
        password = read_password(args.password_file)
        roles = [ADMIN_ROLE] if args.admin else []

        async def create(rows: Rows) -> tuple[int, list[str]]:
            async with rows.sessions() as session:
                user = await UserService(session, rows.ids).create(args.username, password, roles)
                await session.commit()
                return user.id, list(user.roles)

        user_id, user_roles = asyncio.run(_with_resources(settings, create))
        print(f"created user {args.username} (id {user_id}, roles: {', '.join(user_roles) or '-'})")

    return _run(args.env, work)


def run_apikeys_create(args: argparse.Namespace) -> int:
    def work(settings: Settings) -> None:
        from keel.auth.runtime import build_runtime

        cipher = build_runtime(settings).cipher

        async def create(rows: Rows) -> tuple[str, str]:
            async with rows.sessions() as session:
                key, secret = await ApiKeyService(session, cipher, rows.ids).create(
                    args.name, list(args.role)
                )
                await session.commit()
                return key.key_id, secret

        key_id, secret = asyncio.run(_with_resources(settings, create))
        if args.json:
            print(json.dumps({"name": args.name, "key_id": key_id, "secret": secret}))
            return
        print(f"created API key {args.name}")
        print(f"key id: {key_id}")
        print(f"secret: {secret}")
        print("The secret is shown only now; store it in the client's secret store.")

    return _run(args.env, work)


def run_apikeys_disable(args: argparse.Namespace) -> int:
    def work(settings: Settings) -> None:
        async def disable(rows: Rows) -> str | None:
            async with rows.sessions() as session:
                key = await ApiKeyService(session).disable(args.name)
                await session.commit()
                return key.key_id if key is not None else None

        key_id = asyncio.run(_with_resources(settings, disable))
        if key_id is None:
            raise CommandError(f"no API key named {args.name!r}")
        print(
            f"disabled API key {args.name} ({key_id}); API processes stop accepting it within "
            f"API_KEY_CACHE_SECONDS ({settings.auth.api_key_cache_seconds:g} s)"
        )

    return _run(args.env, work)
