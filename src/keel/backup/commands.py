"""``keel backup``, ``keel restore`` and ``keel after-restore``: thin, one error line each."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from keel.config import ENVIRONMENTS

PROG = "keel backup"
DEFAULT_KEEP = 28  # four per day for a week with the default schedule (docs/operations.md)


def _say(prefix: str) -> Callable[[str], None]:
    def say(line: str) -> None:
        print(f"{prefix}: {line}", file=sys.stderr, flush=True)

    return say


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", choices=ENVIRONMENTS, help="environment (default: $APP_ENV)")
    parser.add_argument(
        "--stack",
        choices=("compose", "local"),
        default="local",
        help="compose: the env's Compose stack (tools run in its containers); local: the "
        "PostgreSQL/Redis the env's settings name, with this host's pg_dump/redis-cli "
        "(default)",
    )
    parser.add_argument(
        "--dir", type=Path, help="backup folder (default: backups/<env> under the repo root)"
    )


def _retention_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep",
        type=int,
        default=DEFAULT_KEEP,
        help=f"retention: keep the newest N (default {DEFAULT_KEEP})",
    )
    parser.add_argument(
        "--max-age-days", type=float, help="retention: also keep every backup younger than this"
    )


def _identity_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--identity",
        type=Path,
        action="append",
        default=[],
        help="age identity file (default: the env's key)",
    )


def register(subparsers: Any) -> None:
    backup = subparsers.add_parser(
        "backup", help="encrypted PostgreSQL + Redis backup (no action: take one now)"
    )
    _common(backup)
    _retention_options(backup)
    backup.add_argument(
        "--recipient",
        action="append",
        default=[],
        help="age recipient (default: the env's, from .sops.yaml)",
    )
    backup.add_argument("--no-redis", action="store_true", help="PostgreSQL only")
    backup.set_defaults(handler=run_backup)
    actions = backup.add_subparsers(dest="backup_action", metavar="ACTION")
    listing = actions.add_parser("list", help="finished backups, oldest first")
    _common(listing)
    listing.set_defaults(handler=run_list)
    verify = actions.add_parser(
        "verify", help="check a backup (checksums; with the key also decryption and archive)"
    )
    _common(verify)
    verify.add_argument("source", help="backup folder, stamp, or 'latest'")
    verify.add_argument(
        "--checksums-only",
        action="store_true",
        help="no key needed: manifest, sizes, SHA-256 (an off-host copy)",
    )
    _identity_option(verify)
    verify.set_defaults(handler=run_verify)
    prune = actions.add_parser("prune", help="apply retention now")
    _common(prune)
    _retention_options(prune)
    prune.set_defaults(handler=run_prune)
    status = actions.add_parser(
        "status", help="age of the newest finished backup; exit 1 when older than the limit"
    )
    _common(status)
    status.add_argument(
        "--max-age-hours",
        type=float,
        default=7.0,
        help="allowed age (default 7: the 6-hourly schedule plus slack)",
    )
    status.add_argument(
        "--prom", type=Path, help="also write node_exporter textfile metrics to this file"
    )
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=run_status)

    restore = subparsers.add_parser(
        "restore", help="verify a backup, then restore it (one transaction) and restart"
    )
    _common(restore)
    restore.add_argument("source", help="backup folder, stamp, or 'latest'")
    restore.add_argument(
        "--replace",
        action="store_true",
        help="the target database is not empty: swap it out (kept, renamed)",
    )
    restore.add_argument(
        "--with-redis",
        action="store_true",
        help="also load the Redis part (Compose only; replaces Redis' data)",
    )
    restore.add_argument(
        "--keep-sessions",
        action="store_true",
        help="do not refuse tokens issued before the restore (unsafe)",
    )
    _identity_option(restore)
    restore.set_defaults(handler=run_restore)

    after = subparsers.add_parser(
        "after-restore", help="(run by keel restore) requeue jobs, reset sessions"
    )
    after.add_argument("--env", choices=ENVIRONMENTS)
    after.add_argument("--keep-sessions", action="store_true")
    after.add_argument("--json", action="store_true")
    after.set_defaults(handler=run_after_restore)


def _root() -> Path:
    from keel.config.loader import config_root

    return config_root(os.environ)


def _env(args: argparse.Namespace) -> str:
    env = args.env or os.environ.get("APP_ENV") or "local"
    if args.stack == "compose" and env not in {"dev", "test", "prod"}:
        raise SystemExit(f"{PROG}: --stack compose needs --env dev, test or prod (got {env})")
    return str(env)


def _directory(args: argparse.Namespace, env: str) -> Path:
    return Path(args.dir) if args.dir else _root() / "backups" / env


def _tools(args: argparse.Namespace, env: str) -> Any:
    from keel.backup.tools import ComposeTools, local_tools

    if args.stack == "compose":
        return ComposeTools(_root(), env)
    from keel.config import load

    return local_tools(load(env))


def _guarded(prefix: str, body: Callable[[], int]) -> int:
    from keel.backup.errors import BackupError
    from keel.secrets.errors import SopsError

    try:
        return body()
    except (BackupError, SopsError) as exc:
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the backup folder, a key file: name it, no traceback
        where = f" {exc.filename}" if exc.filename else ""
        print(f"{prefix}: error:{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted; nothing half-done is kept", file=sys.stderr)
        return 130


def run_backup(args: argparse.Namespace) -> int:
    def body() -> int:
        from keel.backup.catalog import prune
        from keel.backup.create import create_backup, env_recipients

        env = _env(args)
        say = _say(PROG)
        tools = _tools(args, env)
        directory = _directory(args, env)
        recipients = args.recipient or env_recipients(_root(), env)
        result = create_backup(
            tools,
            env=env,
            directory=directory,
            recipients=recipients,
            with_redis=not args.no_redis,
            log=say,
        )
        parts = ", ".join(f"{p.file} {p.size:,} B" for p in result.manifest.parts)
        say(
            f"wrote {result.folder} ({parts}) in {result.manifest.duration_s:.1f}s, "
            f"encrypted to {len(recipients)} recipient(s)"
        )
        for gone in prune(directory, keep=args.keep, max_age_days=args.max_age_days):
            say(f"retention: removed {gone.name}")
        print(result.folder)
        return 0

    return _guarded(PROG, body)


def run_list(args: argparse.Namespace) -> int:
    from keel.backup.catalog import list_backups

    env = _env(args)
    for entry in list_backups(_directory(args, env)):
        m = entry.manifest
        detail = (
            f"{entry.size:>14,} B  schema {m.alembic_head}  keel {m.keel_version}"
            if m
            else "  (manifest unreadable)"
        )
        print(f"{entry.folder.name}  {detail}")
    return 0


def _identities(args: argparse.Namespace, env: str) -> Any:
    from keel.config.secrets_layer import env_fallbacks
    from keel.secrets.age_keys import find_identities

    secrets_file = _root() / "secrets" / f"{env}.yaml"
    return find_identities(
        os.environ, explicit=args.identity, fallback=env_fallbacks(secrets_file, env, os.environ)
    )


def run_verify(args: argparse.Namespace) -> int:
    def body() -> int:
        from keel.backup.catalog import resolve
        from keel.backup.verify import verify_backup, verify_checksums

        env = _env(args)
        folder = resolve(_directory(args, env), args.source)
        say = _say("keel backup verify")
        if args.checksums_only:
            manifest = verify_checksums(folder)
            say(f"{folder}: manifest and SHA-256 of {len(manifest.parts)} part(s) match")
        else:
            verify_backup(folder, _identities(args, env), _tools(args, env), say)
        print(f"{folder}: OK")
        return 0

    return _guarded("keel backup verify", body)


def run_prune(args: argparse.Namespace) -> int:
    def body() -> int:
        from keel.backup.catalog import prune

        env = _env(args)
        for gone in prune(_directory(args, env), keep=args.keep, max_age_days=args.max_age_days):
            print(f"removed {gone}")
        return 0

    return _guarded("keel backup prune", body)


def run_status(args: argparse.Namespace) -> int:
    from keel.backup.catalog import freshness, prometheus_text

    env = _env(args)
    fresh = freshness(_directory(args, env))
    ok = fresh.ok(args.max_age_hours)
    if args.prom:
        tmp = args.prom.with_name(args.prom.name + ".tmp")
        tmp.write_text(prometheus_text(env, fresh))
        tmp.replace(args.prom)
    if args.json:
        print(
            json.dumps(
                {
                    "env": env,
                    "ok": ok,
                    "age_s": fresh.age_s,
                    "latest": fresh.latest.folder.name if fresh.latest else None,
                    "max_age_hours": args.max_age_hours,
                }
            )
        )
    elif fresh.latest is None:
        print(f"backup {env}: no finished backup in {_directory(args, env)}")
    else:
        hours = (fresh.age_s or 0) / 3600
        verdict = "ok" if ok else f"STALE (limit {args.max_age_hours:g} h)"
        print(f"backup {env}: newest {fresh.latest.folder.name}, {hours:.1f} h old: {verdict}")
    return 0 if ok else 1


def run_restore(args: argparse.Namespace) -> int:
    def body() -> int:
        from keel.backup.catalog import resolve
        from keel.backup.restore import restore_backup
        from keel.backup.stacks import ComposeStack, LocalStack

        env = _env(args)
        say = _say("keel restore")
        folder = resolve(_directory(args, env), args.source)
        tools = _tools(args, env)
        if args.stack == "compose":
            stack: Any = ComposeStack(tools)
        else:
            from keel.config import load

            stack = LocalStack(load(env))
        report = restore_backup(
            tools,
            stack,
            folder,
            _identities(args, env),
            replace=args.replace,
            with_redis=args.with_redis,
            reset_sessions=not args.keep_sessions,
            log=say,
        )
        for line in report.notes:
            say(line)
        say(
            f"restored {folder.name} (schema {report.manifest.alembic_head}, taken "
            f"{report.manifest.created_at}) into {report.database} in {report.total_s:.1f}s "
            f"(pg_restore {report.restore_s:.1f}s)"
        )
        return 0

    return _guarded("keel restore", body)


def run_after_restore(args: argparse.Namespace) -> int:
    from keel.backup.aftercare import AFTERCARE_MARK, aftercare
    from keel.config import load

    settings = load(args.env)
    report = asyncio.run(aftercare(settings, reset_sessions=not args.keep_sessions))
    if args.json:
        print(
            AFTERCARE_MARK
            + json.dumps({"lines": report.lines(), "requeued": list(report.requeued_running)})
        )
    else:
        for line in report.lines():
            print(line)
    return 0
