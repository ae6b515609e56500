"""``keel credentials export``: hand the stack's service passwords to PostgreSQL and Redis.

The Compose stack runs this once before the database and Redis start. It loads the settings
exactly as the app does (``configs/<env>/app.env`` + the decrypted ``secrets/<env>.yaml``), and
writes the named settings, one file each, into a directory those containers mount read-only.
So the passwords they are initialised with are, by construction, the ones the app uses, and
they never pass through environment variables, command lines or logs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from keel.config import ENVIRONMENTS, SecretStr, load
from keel.config.fields import field_specs

DEFAULT_NAMES = ("DB_PASSWORD", "REDIS_PASSWORD")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "credentials", help="write service passwords from the settings into files (Compose)"
    )
    actions = parser.add_subparsers(dest="credentials_command", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export",
        help="write settings (default: DB_PASSWORD REDIS_PASSWORD) to DIR/<name in lower case>",
    )
    export.add_argument("--dir", required=True, type=Path, help="existing, writable directory")
    export.add_argument("--env", choices=ENVIRONMENTS, help="environment (default: $APP_ENV)")
    export.add_argument(
        "--mode", default="0440", help="file mode, octal (default 0440: owner and group read)"
    )
    export.add_argument("names", nargs="*", metavar="NAME", help="setting names")
    export.set_defaults(handler=export_credentials)


def _write_private(directory: Path, name: str, value: str, mode: int) -> None:
    """Atomically replace directory/name with value (temp file + rename; never world-readable)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
        os.chmod(tmp, mode)
        os.replace(tmp, directory / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_credentials(args: argparse.Namespace) -> int:
    names = [name.upper() for name in (args.names or DEFAULT_NAMES)]
    specs = field_specs()
    unknown = [name for name in names if name not in specs]
    if unknown:
        print(f"keel credentials: unknown setting(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    try:
        mode = int(args.mode, 8)
    except ValueError:
        print(f"keel credentials: --mode {args.mode!r} is not an octal mode", file=sys.stderr)
        return 2
    directory: Path = args.dir
    if not directory.is_dir():
        print(f"keel credentials: --dir {directory} is not a directory", file=sys.stderr)
        return 2
    settings = load(args.env)

    empty: list[str] = []
    for name in names:
        spec = specs[name]
        value: Any = spec.value_in(settings)
        text = value.reveal() if isinstance(value, SecretStr) else str(value)
        if not text:
            empty.append(name)
            continue
        _write_private(directory, name.lower(), text, mode)
    if empty:
        print(
            f"keel credentials: {', '.join(empty)} empty for APP_ENV={settings.app.env}; "
            f"set them in secrets/{settings.app.env}.yaml "
            f"(`make secrets-init ENV={settings.app.env}` creates them)",
            file=sys.stderr,
        )
        return 1
    print(f"keel credentials: wrote {', '.join(n.lower() for n in names)} to {directory}")
    return 0
