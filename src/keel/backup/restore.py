"""``keel restore``: verify everything, then restore in one transaction, then bring it back.

1. :func:`keel.backup.verify.verify_backup` (manifest, SHA-256, full age decryption,
   ``pg_restore --list``) and the schema check (the backup's alembic head is one this Keel
   knows) — nothing is started or touched before these pass;
2. the target database must be empty, unless ``replace``: then the backup is restored into a
   new database and swapped in by two renames in one transaction, the old one kept as
   ``<db>_before_restore_<stamp>``;
3. ``pg_restore --single-transaction --exit-on-error --no-owner --no-privileges``: a failure
   anywhere rolls everything back (an empty target stays empty);
4. migrations to head (a backup from an older release), aftercare (jobs, sessions: see
   :mod:`keel.backup.aftercare`), the stack started and ready.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from keel.backup.create import new_stamp
from keel.backup.errors import BackupError, TargetError, VerifyError
from keel.backup.manifest import Manifest
from keel.backup.stream import decrypt_stream
from keel.backup.tools import Tools, last_line, psql
from keel.backup.verify import VerifiedBackup, verify_backup
from keel.secrets.age_keys import Identities

Log = Callable[[str], None]

_USER_RELATIONS = (
    "SELECT count(*), coalesce(string_agg(c.relname, ', ' ORDER BY c.relname) "
    "FILTER (WHERE c.relkind IN ('r', 'p')), '') FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'"
)


class Stack:
    """What differs between a Compose stack and a local PostgreSQL around the restore."""

    # Whether this place can load the Redis part (it needs the Redis server's data dir).
    loads_redis = False

    def prepare(self, log: Log) -> None:
        """Make the database server reachable (nothing is changed)."""

    def stop_apps(self, log: Log) -> None:
        """Stop whatever uses the database (before replacing it)."""

    def load_redis(self, feed: Callable[[IO[bytes]], None], log: Log) -> None:
        """Replace Redis' data with the RDB that ``feed`` writes (stdin of a loader)."""
        raise BackupError("this stack cannot load the Redis part")

    def finish(self, log: Log, reset_sessions: bool) -> list[str]:
        """Migrate to head, aftercare, start; report lines."""
        return []


@dataclass
class RestoreReport:
    folder: Path
    manifest: Manifest
    database: str
    replaced: str | None
    restore_s: float
    total_s: float
    notes: list[str] = field(default_factory=list)


def check_schema_known(manifest: Manifest, known: Callable[[str], bool]) -> None:
    head = manifest.alembic_head
    if head and not all(known(rev) for rev in head.split(",")):
        raise VerifyError(
            f"the backup's schema is at {head}, which this Keel does not know (a backup from a "
            f"newer release, keel {manifest.keel_version}): restore it with that release"
        )


def alembic_knows(revision: str) -> bool:
    from alembic.util.exc import CommandError

    from keel.db.migrate import script_directory

    try:
        return script_directory().get_revision(revision) is not None
    except CommandError:
        return False


def target_relations(tools: Tools, database: str) -> tuple[int, str]:
    count, names = psql(tools, _USER_RELATIONS, database=database).split("|", 1)
    return int(count), names


def restore_into(
    tools: Tools, verified: VerifiedBackup, identities: Identities, database: str
) -> None:
    """Stream the decrypted dump into ``pg_restore`` (one transaction, first error stops)."""
    part = verified.manifest.part("postgres")
    assert part is not None
    path = verified.folder / part.file
    call = tools.pg(
        [
            "pg_restore",
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            "-d",
            database,
        ],
        database=database,
    )
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(  # noqa: S603 - argv built in keel.backup.tools
            call.argv, env=call.env, stdin=subprocess.PIPE, stdout=errors, stderr=errors
        )
        assert process.stdin is not None
        failure: BaseException | None = None
        try:
            decrypt_stream(path, process.stdin, identities.keys)
            process.stdin.close()
        except BaseException as exc:  # noqa: BLE001 - decided below, after pg_restore's status
            failure = exc
        if failure is not None:
            # pg_restore stopped reading (its status says why), or the stream broke: never hand
            # it an early EOF it could take for the end; kill it, its transaction rolls back.
            try:
                code = process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                code = None
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
            if code is None or code == 0:
                if isinstance(failure, KeyboardInterrupt):
                    raise failure
                raise BackupError(
                    f"{path}: decryption failed mid-restore ({failure}); pg_restore was stopped "
                    "and its transaction rolled back: nothing was restored"
                ) from None
        else:
            code = process.wait()
        errors.seek(0)
        stderr = errors.read()
    if code != 0:
        raise BackupError(
            f"pg_restore failed (exit {code}), its one transaction rolled back, nothing was "
            f"restored: {last_line(stderr)}"
        )


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def restore_backup(
    tools: Tools,
    stack: Stack,
    folder: Path,
    identities: Identities,
    *,
    replace: bool = False,
    with_redis: bool = False,
    reset_sessions: bool = True,
    known_revision: Callable[[str], bool] = alembic_knows,
    log: Log = lambda _line: None,
) -> RestoreReport:
    started = time.monotonic()
    if with_redis and not stack.loads_redis:
        raise BackupError(
            "--with-redis: this Redis is not Keel's container; load redis.rdb.age by hand "
            "(docs/operations.md, Redis-held state) or restore without it"
        )
    verified = verify_backup(folder, identities, tools, log)
    check_schema_known(verified.manifest, known_revision)
    redis_part = verified.manifest.part("redis")
    if with_redis and redis_part is None:
        raise VerifyError(f"{folder}: --with-redis, but the backup has no Redis part")
    stack.prepare(log)
    database = tools.database
    count, names = target_relations(tools, database)
    replaced = None
    if count and not replace:
        raise TargetError(
            f"database {database} ({tools.describe}) is not empty ({count} relations: "
            f"{names or 'no tables'}); restore into an empty database (a fresh volume), or "
            "pass --replace to swap it out (it is kept, renamed)"
        )
    restore_began = time.monotonic()
    if count:
        stack.stop_apps(log)
        stamp = new_stamp().lower()
        staging = f"{database}_restore_{stamp}"[:63]
        replaced = f"{database}_before_restore_{stamp}"[:63]
        psql(tools, f"CREATE DATABASE {_quote(staging)} TEMPLATE template0", database="postgres")
        log(f"restoring into {staging} (the current {database} is untouched until the swap)")
        try:
            restore_into(tools, verified, identities, staging)
        except BaseException:
            psql(tools, f"DROP DATABASE IF EXISTS {_quote(staging)}", database="postgres")
            raise
        # Two renames in one transaction: the switch is all or nothing.
        psql(
            tools,
            # database is the env's own name (compose.yaml or DB_DATABASE), quoted as a literal
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "  # noqa: S608
            f"WHERE datname = {_literal(database)} AND pid <> pg_backend_pid()",
            database="postgres",
        )
        psql(
            tools,
            f"ALTER DATABASE {_quote(database)} RENAME TO {_quote(replaced)}; "
            f"ALTER DATABASE {_quote(staging)} RENAME TO {_quote(database)}",
            database="postgres",
        )
        log(f"swapped in; the previous database is kept as {replaced} (drop it when done)")
    else:
        log(f"restoring into the empty database {database} ({tools.describe})")
        restore_into(tools, verified, identities, database)
    restore_s = time.monotonic() - restore_began
    log(f"pg_restore done in {restore_s:.1f}s")
    if with_redis and redis_part is not None:
        rdb = folder / redis_part.file

        def feed(sink: IO[bytes]) -> None:
            decrypt_stream(rdb, sink, identities.keys)

        stack.load_redis(feed, log)
    notes = stack.finish(log, reset_sessions)
    return RestoreReport(
        folder=folder,
        manifest=verified.manifest,
        database=database,
        replaced=replaced,
        restore_s=restore_s,
        total_s=time.monotonic() - started,
        notes=notes,
    )
