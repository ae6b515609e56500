"""``keel backup``: dump PostgreSQL (custom format) and Redis (RDB), encrypted as they stream.

Every part goes ``dump tool stdout -> pipe -> age (pyrage) -> <part>.age``; the folder is
written as ``.<stamp>.partial`` and renamed to ``<stamp>`` after its manifest, so a crash
leaves no folder that looks complete.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel import __version__
from keel.backup.errors import BackupError
from keel.backup.manifest import FORMAT, Manifest, Part, PartKind, write_manifest
from keel.backup.stream import EncryptedPart, encrypt_stream
from keel.backup.tools import Invocation, Tools, last_line, psql, run_text, tool_name
from keel.secrets.age_keys import parse_recipient
from keel.secrets.errors import SopsError
from keel.secrets.sops_config import find_config, rule_for

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
PG_FILE = "postgres.dump.age"
REDIS_FILE = "redis.rdb.age"
PG_MAGIC = b"PGDMP"
REDIS_MAGIC = b"REDIS"


@dataclass(frozen=True)
class BackupResult:
    folder: Path
    manifest: Manifest


def env_recipients(root: Path, env: str) -> list[str]:
    """The age recipients ``secrets/<env>.yaml`` is encrypted to (its ``.sops.yaml`` rule).

    Every key that opens the env's secrets opens its backups; with key groups (Shamir) any one
    recipient of any group can (age has no threshold): say so in the runbook.
    """
    secrets_file = root / "secrets" / f"{env}.yaml"
    try:
        rule = rule_for(secrets_file, find_config(root))
    except SopsError as exc:
        raise BackupError(f"recipients for {env}: {exc}") from None
    recipients = [r for group in rule.plan.groups for r in group]
    if not recipients:
        raise BackupError(f".sops.yaml: the rule for secrets/{env}.yaml lists no age recipient")
    return recipients


def _parse_recipients(texts: Sequence[str]) -> list[Any]:
    try:
        return [parse_recipient(text) for text in texts]
    except SopsError as exc:
        raise BackupError(f"recipient: {exc}") from None


def new_stamp(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime(STAMP_FORMAT)


def _stream_part(
    call: Invocation, target: Path, recipients: Sequence[Any], magic: bytes
) -> EncryptedPart:
    """Run ``call`` and encrypt its stdout into ``target``; its stderr goes to a temp file."""
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(  # noqa: S603 - argv built in keel.backup.tools
                call.argv, env=call.env, stdout=subprocess.PIPE, stderr=errors
            )
        except FileNotFoundError as exc:
            raise BackupError(f"{exc.filename}: not installed (needed for backup)") from None
        assert process.stdout is not None
        try:
            part = encrypt_stream(process.stdout, target, recipients)
        finally:
            process.stdout.close()
            code = process.wait()
        errors.seek(0)
        stderr = errors.read()
    if code != 0:
        raise BackupError(f"{tool_name(call)} failed (exit {code}): {last_line(stderr)}")
    if not part.head.startswith(magic):
        raise BackupError(
            f"{tool_name(call)} wrote no {magic.decode()} archive ({part.plaintext_size} bytes)"
        )
    return part


def _manifest_part(kind: PartKind, file: str, format: str, part: EncryptedPart) -> Part:
    """The manifest's entry for an encrypted part (its sizes and digest as written)."""
    return Part(
        kind=kind,
        file=file,
        format=format,
        size=part.size,
        sha256=part.sha256,
        plaintext_size=part.plaintext_size,
    )


def postgres_facts(tools: Tools) -> tuple[str, int, str | None]:
    """(server version, major, alembic head or None when the schema was never migrated)."""
    version, number = psql(
        tools, "SELECT current_setting('server_version'), current_setting('server_version_num')"
    ).split("|")
    from keel.db.engine import VERSION_TABLE

    # VERSION_TABLE is a constant of keel.db.engine, not input.
    query = (
        f"SELECT CASE WHEN to_regclass('public.{VERSION_TABLE}') IS NULL THEN '' ELSE "  # noqa: S608
        f"(SELECT coalesce(string_agg(version_num, ','), '') FROM {VERSION_TABLE}) END"
    )
    head = psql(tools, query)
    return version.strip(), int(number) // 10000, head or None


def redis_version(tools: Tools) -> str:
    info = run_text(tools.redis_cli(["INFO", "server"]), timeout=30)
    for line in info.splitlines():
        if line.startswith("redis_version:"):
            return line.split(":", 1)[1].strip()
    raise BackupError("redis-cli INFO server: no redis_version (is that a Redis server?)")


def create_backup(
    tools: Tools,
    *,
    env: str,
    directory: Path,
    recipients: Sequence[str],
    with_redis: bool = True,
    log: Callable[[str], None] = lambda _line: None,
) -> BackupResult:
    started = time.monotonic()
    age_recipients = _parse_recipients(recipients)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = new_stamp()
    final = directory / stamp
    if final.exists():
        raise BackupError(f"{final} already exists (two backups in one second?); retry")
    staging = directory / f".{stamp}.partial"
    staging.mkdir(mode=0o700)
    try:
        pg_version, major, head = postgres_facts(tools)
        tools.use_server_major(major)
        log(f"dumping PostgreSQL {pg_version} ({tools.describe}), schema {head or 'empty'}")
        pg = _stream_part(tools.pg(["pg_dump", "-Fc"]), staging / PG_FILE, age_recipients, PG_MAGIC)
        parts = [_manifest_part("postgres", PG_FILE, "pg_dump -Fc", pg)]
        rversion = None
        if with_redis and tools.has_redis:
            rversion = redis_version(tools)
            log(f"snapshotting Redis {rversion}")
            rdb = _stream_part(
                tools.redis_cli(["--rdb", "-"]),
                staging / REDIS_FILE,
                age_recipients,
                REDIS_MAGIC,
            )
            parts.append(_manifest_part("redis", REDIS_FILE, "redis rdb", rdb))
        manifest = Manifest(
            format=FORMAT,
            created_at=dt.datetime.strptime(stamp, STAMP_FORMAT)
            .replace(tzinfo=dt.UTC)
            .isoformat()
            .replace("+00:00", "Z"),
            env=env,
            source=tools.describe,
            keel_version=__version__,
            alembic_head=head,
            postgres_version=pg_version,
            redis_version=rversion,
            recipients=list(recipients),
            parts=parts,
            duration_s=round(time.monotonic() - started, 3),
        )
        write_manifest(staging, manifest)
        for path in [*staging.iterdir(), staging]:
            _fsync(path)
        staging.rename(final)
        _fsync(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BackupResult(final, manifest)


def _fsync(path: Path) -> None:
    """Flush a file or a folder entry to disk: a backup that was reported is really there."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
