"""``keel users create|list|disable|enable|set-password|unlock``: people who log in.

A change of roles or a disabled user takes effect at the user's next refresh, at the latest after
``JWT_EXPIRE_MINUTES`` (access tokens carry the roles and are not looked up per request).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from keel.commands.accounts import (
    ACCOUNT_HEADERS,
    CommandError,
    account_cells,
    account_json,
    add_env_option,
    add_password_option,
    open_accounts,
    print_table,
    read_password,
    run_command,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from keel.config import Settings
    from keel.domain.users.models import User

# The login-failure counter's name in the rate-limit store (keel.auth.runtime: "login-user").
LOGIN_THROTTLE_PREFIX = "login"  # LoginThrottle's default prefix


def register(subparsers: Any) -> None:
    users = subparsers.add_parser("users", help="manage users (people who log in)")
    sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)

    create = sub.add_parser("create", help="create a user (password from prompt or file)")
    create.add_argument("username")
    create.add_argument("--admin", action="store_true", help="give the user the admin role")
    add_password_option(create)
    create.set_defaults(handler=run_create)

    listing = sub.add_parser("list", help="every user: roles, active or not, created")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    listing.set_defaults(handler=run_list)

    disable = sub.add_parser("disable", help="stop a user from logging in and refreshing")
    disable.set_defaults(handler=run_disable)
    enable = sub.add_parser("enable", help="let a disabled user log in again")
    enable.set_defaults(handler=run_enable)
    password = sub.add_parser("set-password", help="give a user a new password")
    add_password_option(password)
    password.set_defaults(handler=run_set_password)
    unlock = sub.add_parser(
        "unlock", help="lift the lockout after too many failed logins (Redis-backed envs)"
    )
    unlock.set_defaults(handler=run_unlock)

    for parser in (create, listing, disable, enable, password, unlock):
        if parser is not create and parser is not listing:
            parser.add_argument("username")
        add_env_option(parser)


async def _user(session: AsyncSession, username: str) -> User:
    from keel.domain.users.services import UserService

    user = await UserService(session).by_username(username)
    if user is None:
        raise CommandError(f"no user named {username!r} (`uv run keel users list` shows them)")
    return user


def run_create(args: argparse.Namespace) -> int:
    async def work(settings: Settings) -> None:
        from keel.domain.users.services import ADMIN_ROLE, UserService

        password = read_password(args.password_file)
        roles = [ADMIN_ROLE] if args.admin else []
        async with open_accounts(settings, creates_rows=True) as db, db.sessions() as session:
            user = await UserService(session, db.ids).create(args.username, password, roles)
            await session.commit()
        print(f"created user {args.username} (id {user.id}, roles: {', '.join(user.roles) or '-'})")

    return run_command(args.env, work)


def run_list(args: argparse.Namespace) -> int:
    async def work(settings: Settings) -> None:
        from sqlalchemy import select

        from keel.domain.users.models import User

        async with open_accounts(settings, creates_rows=False) as db, db.sessions() as session:
            users = (await session.execute(select(User).order_by(User.username))).scalars().all()
        if args.json:
            print(
                json.dumps(
                    [{"id": str(u.id), "username": u.username, **account_json(u)} for u in users]
                )
            )
            return
        rows = [[u.username, str(u.id), *account_cells(u)] for u in users]
        print_table(["USERNAME", "ID", *ACCOUNT_HEADERS], rows)

    return run_command(args.env, work)


def _set_active(args: argparse.Namespace, active: bool) -> int:
    async def work(settings: Settings) -> None:
        import datetime as dt

        async with open_accounts(settings, creates_rows=False) as db, db.sessions() as session:
            user = await _user(session, args.username)
            changed = user.is_active != active
            user.is_active = active
            user.updated_at = dt.datetime.now(dt.UTC)
            await session.commit()
        verb = "enabled" if active else "disabled"
        if not changed:
            print(f"user {args.username} was already {verb}")
        elif active:
            print(f"enabled user {args.username}: they can log in again")
        else:
            print(
                f"disabled user {args.username}: no new logins or refreshes; a token already "
                f"issued works until it expires (JWT_EXPIRE_MINUTES, "
                f"{settings.auth.jwt_expire_minutes} min)"
            )

    return run_command(args.env, work)


def run_disable(args: argparse.Namespace) -> int:
    return _set_active(args, active=False)


def run_enable(args: argparse.Namespace) -> int:
    return _set_active(args, active=True)


def run_set_password(args: argparse.Namespace) -> int:
    async def work(settings: Settings) -> None:
        import datetime as dt

        from keel.domain.users.passwords import hash_password

        password = read_password(args.password_file)
        async with open_accounts(settings, creates_rows=False) as db, db.sessions() as session:
            user = await _user(session, args.username)
            user.password_hash = hash_password(password)
            user.updated_at = dt.datetime.now(dt.UTC)
            await session.commit()
        print(f"new password set for {args.username}")

    return run_command(args.env, work)


def login_throttle_keys(settings: Settings, username: str) -> tuple[str, str]:
    """The Redis keys of a username's login throttle: its account counter, and the pattern of
    its per-client counters (keel.auth.throttle.LoginThrottle, in the ``rate_limit`` store).

    Named here as keel.stores names them (``<APP_NAME>_rate_limit:<key>``) without importing
    Litestar (seconds). tests/service/test_users_cli.py locks a user out through the real API
    and lifts it with this command, so a change on either side fails there.
    """
    store = f"{settings.app.name}_rate_limit"
    account = username.lower()
    escaped = "".join(f"\\{c}" if c in "*?[]\\" else c for c in account)
    return f"{store}:{LOGIN_THROTTLE_PREFIX}-acct:{account}", (
        f"{store}:{LOGIN_THROTTLE_PREFIX}-pair:{escaped}|*"
    )


def run_unlock(args: argparse.Namespace) -> int:
    async def work(settings: Settings) -> None:
        if settings.redis.backend == "memory":
            raise CommandError(
                f"APP_ENV={settings.app.env} keeps login lockouts in the API process's memory "
                "(REDIS_BACKEND=memory): restart the API to lift them"
            )
        from keel.redis_conn import make_client, redis_where

        client = make_client(settings)
        account_key, pairs = login_throttle_keys(settings, args.username)
        try:
            try:
                failures = await client.hget(account_key, "n")
                keys = [account_key, *[key async for key in client.scan_iter(match=pairs)]]
                cleared = await client.delete(*keys)
            except Exception as exc:  # noqa: BLE001 - one line for the operator
                raise CommandError(
                    f"cannot reach Redis at {redis_where(settings)}: {exc}"
                ) from None
        finally:
            await client.aclose()
        if not cleared:
            print(f"user {args.username} had no failed logins on record")
            return
        print(f"unlocked {args.username}: cleared {int(failures or 0)} failed login(s)")

    return run_command(args.env, work)
