"""``keel apikeys create|list|disable``: services that sign their requests.

A key's secret is printed once, at creation; only its ciphertext is stored, and ``list`` never
shows it.
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
    open_accounts,
    print_table,
    run_command,
)

if TYPE_CHECKING:
    from keel.config import Settings


def register(subparsers: Any) -> None:
    apikeys = subparsers.add_parser("apikeys", help="manage API keys (services that sign requests)")
    sub = apikeys.add_subparsers(dest="apikeys_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create an API key; prints its secret once")
    create.add_argument("name")
    create.add_argument("--role", action="append", default=[], help="a role for the key (repeat)")
    create.add_argument("--json", action="store_true", help="print {key_id, secret, name} as JSON")
    create.set_defaults(handler=run_create)
    listing = sub.add_parser("list", help="every API key: id, roles, active or not (no secrets)")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    listing.set_defaults(handler=run_list)
    disable = sub.add_parser("disable", help="stop an API key from signing requests")
    disable.add_argument("name")
    disable.set_defaults(handler=run_disable)
    for parser in (create, listing, disable):
        add_env_option(parser)


def run_create(args: argparse.Namespace) -> int:
    async def work(settings: Settings) -> None:
        from keel.auth.crypto import SecretCipher
        from keel.auth.dev_values import required_secret
        from keel.domain.users.services import ApiKeyService

        master = required_secret(
            settings, "API_KEY_ENCRYPTION_KEY", settings.auth.api_key_encryption_key.reveal()
        )
        cipher = SecretCipher(master)
        async with open_accounts(settings, creates_rows=True) as db, db.sessions() as session:
            key, secret = await ApiKeyService(session, cipher, db.ids).create(
                args.name, list(args.role)
            )
            await session.commit()
        if args.json:
            print(json.dumps({"name": args.name, "key_id": key.key_id, "secret": secret}))
            return
        print(f"created API key {args.name}")
        print(f"key id: {key.key_id}")
        print(f"secret: {secret}")
        print("The secret is shown only now; store it in the client's secret store.")

    return run_command(args.env, work)


def run_list(args: argparse.Namespace) -> int:
    async def work(settings: Settings) -> None:
        from sqlalchemy import select

        from keel.domain.users.models import ApiKey

        async with open_accounts(settings, creates_rows=False) as db, db.sessions() as session:
            keys = (await session.execute(select(ApiKey).order_by(ApiKey.name))).scalars().all()
        if args.json:
            print(
                json.dumps([{"name": k.name, "key_id": k.key_id, **account_json(k)} for k in keys])
            )
            return
        rows = [[k.name, k.key_id, *account_cells(k)] for k in keys]
        print_table(["NAME", "KEY ID", *ACCOUNT_HEADERS], rows)

    return run_command(args.env, work)


def run_disable(args: argparse.Namespace) -> int:
    async def work(settings: Settings) -> None:
        from keel.domain.users.services import ApiKeyService

        async with open_accounts(settings, creates_rows=False) as db, db.sessions() as session:
            key = await ApiKeyService(session).disable(args.name)
            await session.commit()
        if key is None:
            raise CommandError(f"no API key named {args.name!r} (`uv run keel apikeys list`)")
        print(
            f"disabled API key {args.name} ({key.key_id}); API processes stop accepting it within "
            f"API_KEY_CACHE_SECONDS ({settings.auth.api_key_cache_seconds:g} s)"
        )

    return run_command(args.env, work)
