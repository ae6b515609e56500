"""Backup and restore against a real PostgreSQL and Redis (the local, non-Docker path).

Each fault a restore must refuse (truncated, flipped byte, wrong key, missing part, forged
manifest, newer schema, non-empty target) is refused with one line naming the file, and the
target database is left exactly as it was.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from pathlib import Path

import msgspec
import pytest

from keel.auth.revocation import SESSIONS_RESET_KEY
from keel.backup.aftercare import aftercare
from keel.backup.create import PG_FILE, REDIS_FILE, create_backup
from keel.backup.errors import BackupError, TargetError
from keel.backup.manifest import MANIFEST_NAME, Manifest, read_manifest, write_manifest
from keel.backup.restore import Stack, restore_backup
from keel.backup.stream import AGE_MAGIC, file_digest
from keel.backup.tools import local_tools
from keel.db.migrate import head_revision
from keel.secrets.age_keys import Identities, generate
from tests.service.conftest import KEEL, make_settings, new_pg_env, process_env
from tests.service.servers import Postgres

TABLES = ("users", "api_keys", "jobs", "alembic_versions")


class Untouched(Stack):
    """Records the calls; does not migrate or start anything (the test checks raw rows)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def prepare(self, log: object) -> None:
        self.calls.append("prepare")

    def stop_apps(self, log: object) -> None:
        self.calls.append("stop_apps")

    def finish(self, log: object, reset_sessions: bool) -> list[str]:
        self.calls.append("finish")
        return []


def keypair() -> tuple[str, Identities]:
    identity, recipient = generate()
    found = Identities()
    found.add_text(identity, "test key")
    return recipient, found


def seed(pg: Postgres, database: str, marker: str) -> None:
    """Users, API keys, and jobs in every state; the marker sits in a payload and a name."""
    rows = []
    for i, status in enumerate(["succeeded", "succeeded", "failed", "queued", "queued", "running"]):
        worker = "'w-dead.1'" if status == "running" else "NULL"
        rows.append(
            f"({1000 + i}, 'echo', 'default', '{{\"note\": \"{marker}\", \"i\": {i}}}', "
            f"'{status}', {1 if status != 'queued' else 0}, 3, NULL, NULL, NULL, {worker}, "
            "NULL, now(), NULL, NULL)"
        )
    pg.psql(
        database,
        "INSERT INTO users VALUES "
        "(1, 'alice', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA', '[\"admin\"]', true, "
        f"now(), now()), (2, '{marker}', 'x', '[]', true, now(), now());"
        "INSERT INTO api_keys VALUES (1, 'kid1', 'reporting', 'ciphertext', '[]', true, now());"
        "INSERT INTO jobs (id, kind, queue, payload, status, attempts, max_attempts, result, "
        "error, idempotency_key, worker_id, run_after, created_at, started_at, finished_at) "
        "VALUES " + ", ".join(rows),
    )


def add_jobs(pg: Postgres, database: str, count: int) -> None:
    """``count`` more succeeded jobs, each payload an md5: a dump that does not compress away."""
    pg.psql(
        database,
        "INSERT INTO jobs (id, kind, queue, payload, status, attempts, max_attempts, "
        "created_at) SELECT 10000 + g, 'echo', 'default', jsonb_build_object('n', md5(g::text)), "
        f"'succeeded', 1, 3, now() FROM generate_series(1, {count}) g",
    )


def checksums(pg: Postgres, database: str) -> dict[str, str]:
    return {
        table: pg.psql(
            database,
            f"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), "
            f"'') FROM {table} t",
        ).stdout.strip()
        for table in TABLES
    }


def relations(pg: Postgres, database: str) -> int:
    return int(
        pg.psql(
            database,
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public'",
        ).stdout.strip()
    )


def no_snapshot_delay(env: dict[str, str]) -> None:
    """`redis-cli --rdb` waits this long (5 s by default) for more replicas to join the snapshot:
    no replica is coming here, and the suite takes a dozen backups."""
    subprocess.run(
        ["redis-cli", "-p", env["REDIS_PORT"], "CONFIG", "SET", "repl-diskless-sync-delay", "0"],
        capture_output=True,
        check=True,
    )


@pytest.fixture
def source(pg_server: Postgres, redis_env: dict[str, str]) -> dict[str, str]:
    env = {**new_pg_env(pg_server), **redis_env}
    no_snapshot_delay(env)
    return env


@pytest.fixture
def marker() -> str:
    return f"MARKER-{uuid.uuid4().hex}"


def take_backup(env: dict[str, str], tmp_path: Path, recipient: str) -> Path:
    tools = local_tools(make_settings(env))
    return create_backup(
        tools, env="local", directory=tmp_path / "b", recipients=[recipient]
    ).folder


def seeded_backup(
    pg_server: Postgres, source: dict[str, str], tmp_path: Path, marker: str
) -> tuple[dict[str, str], str, Identities, Path]:
    """Seed the source, note its checksums, back it up: (checksums, recipient, key, folder)."""
    seed(pg_server, source["DB_DATABASE"], marker)
    before = checksums(pg_server, source["DB_DATABASE"])
    recipient, identities = keypair()
    return before, recipient, identities, take_backup(source, tmp_path, recipient)


def target_tools(pg_server: Postgres, source_env: dict[str, str], database: str) -> object:
    return local_tools(make_settings({**source_env, "DB_DATABASE": database}))


def test_backup_is_encrypted_complete_and_restores_row_for_row(
    pg_server: Postgres, source: dict[str, str], tmp_path: Path, marker: str
) -> None:
    before, recipient, identities, folder = seeded_backup(pg_server, source, tmp_path, marker)

    manifest = read_manifest(folder)
    assert manifest.alembic_head == head_revision()
    assert manifest.postgres_version.split(".")[0].isdigit()
    assert manifest.redis_version
    assert manifest.redis_version[0].isdigit()
    assert manifest.recipients == [recipient]
    assert sorted(p.file for p in manifest.parts) == sorted([PG_FILE, REDIS_FILE])
    for part in manifest.parts:
        data = (folder / part.file).read_bytes()
        assert data.startswith(AGE_MAGIC), part.file
        assert marker.encode() not in data, f"plaintext marker found in {part.file}"
        assert (part.size, part.sha256) == file_digest(folder / part.file)
        assert (folder / part.file).stat().st_mode & 0o077 == 0
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]

    empty = pg_server.create_database(f"restored_{uuid.uuid4().hex[:8]}")
    stack = Untouched()
    report = restore_backup(
        target_tools(pg_server, source, empty),
        stack,
        folder,
        identities,  # type: ignore[arg-type]
    )
    assert stack.calls == ["prepare", "finish"]
    assert report.replaced is None
    assert checksums(pg_server, empty) == before


def test_aftercare_requeues_running_jobs_and_resets_sessions(
    pg_server: Postgres, source: dict[str, str], marker: str
) -> None:
    database = source["DB_DATABASE"]
    seed(pg_server, database, marker)
    settings = make_settings(source)
    key = f"{settings.app.name}_revoked_tokens:{SESSIONS_RESET_KEY}"
    cli = ["redis-cli", "-p", source["REDIS_PORT"]]
    try:
        report = asyncio.run(aftercare(settings))
        mark = subprocess.run([*cli, "GET", key], capture_output=True, text=True, check=True)
    finally:
        # The mark is global to the store: later tests in this Redis must not see it.
        subprocess.run([*cli, "DEL", key], capture_output=True, check=True)
    assert report.requeued_running == (1005,)
    assert report.enqueued == 3  # two queued + the one that was running
    status = pg_server.psql(database, "SELECT status FROM jobs WHERE id = 1005").stdout.strip()
    assert status == "queued"
    assert report.sessions_reset_at is not None
    assert int(mark.stdout.strip()) == report.sessions_reset_at
    streams = subprocess.run(
        [*cli, "--scan", "--pattern", f"{source['REDIS_KEY_PREFIX']}:*"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert any("default" in key for key in streams), streams


def test_replace_swaps_databases_and_keeps_the_old_one(
    pg_server: Postgres, source: dict[str, str], tmp_path: Path, marker: str
) -> None:
    database = source["DB_DATABASE"]
    before, _, identities, folder = seeded_backup(pg_server, source, tmp_path, marker)
    pg_server.psql(database, "DELETE FROM jobs; UPDATE users SET username = username || '-changed'")

    stack = Untouched()
    report = restore_backup(
        local_tools(make_settings(source)), stack, folder, identities, replace=True
    )
    assert stack.calls == ["prepare", "stop_apps", "finish"]
    assert checksums(pg_server, database) == before
    assert report.replaced is not None
    kept = pg_server.psql(report.replaced, "SELECT count(*) FROM jobs").stdout.strip()
    assert kept == "0"


# --- faults: each refused with one line before the target is touched -------------------------


@pytest.fixture
def backup(
    pg_server: Postgres, source: dict[str, str], tmp_path: Path, marker: str
) -> tuple[Path, Identities, str]:
    _, recipient, identities, folder = seeded_backup(pg_server, source, tmp_path, marker)
    return folder, identities, recipient


def flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def rewrite_manifest(folder: Path, manifest: Manifest) -> None:
    (folder / MANIFEST_NAME).unlink()
    write_manifest(folder, manifest)


def forge_pg_entry(folder: Path, **fields: int) -> None:
    """Make the manifest vouch for the PostgreSQL part as it is now (size, SHA-256, ``fields``)."""
    manifest = read_manifest(folder)
    size, digest = file_digest(folder / PG_FILE)
    parts = [
        msgspec.structs.replace(p, size=size, sha256=digest, **fields) if p.file == PG_FILE else p
        for p in manifest.parts
    ]
    rewrite_manifest(folder, msgspec.structs.replace(manifest, parts=parts))


def _failed_restore(
    pg_server: Postgres,
    source: dict[str, str],
    folder: Path,
    identities: Identities,
    **options: bool,
) -> tuple[str, Untouched, str]:
    """Restore into a new empty database, which must fail: (message, stack, database)."""
    empty = pg_server.create_database(f"target_{uuid.uuid4().hex[:8]}")
    stack = Untouched()
    with pytest.raises(BackupError) as caught:
        restore_backup(
            target_tools(pg_server, source, empty),  # type: ignore[arg-type]
            stack,
            folder,
            identities,
            **options,
        )
    return str(caught.value), stack, empty


def _refused(
    pg_server: Postgres, source: dict[str, str], folder: Path, identities: Identities
) -> tuple[str, Untouched, str]:
    message, stack, empty = _failed_restore(pg_server, source, folder, identities)
    assert "\n" not in message
    assert relations(pg_server, empty) == 0, "the target was touched"
    return message, stack, empty


def test_truncated_part_is_refused(pg_server, source, backup) -> None:  # type: ignore[no-untyped-def]
    folder, identities, _ = backup
    path = folder / PG_FILE
    path.write_bytes(path.read_bytes()[:-100])
    message, stack, _ = _refused(pg_server, source, folder, identities)
    assert isinstance(stack, Untouched)
    assert stack.calls == []
    assert PG_FILE in message
    assert "truncated" in message


def test_flipped_byte_is_refused(pg_server, source, backup) -> None:  # type: ignore[no-untyped-def]
    folder, identities, _ = backup
    path = folder / PG_FILE
    flip_middle_byte(path)
    message, stack, _ = _refused(pg_server, source, folder, identities)
    assert stack.calls == []
    assert PG_FILE in message
    assert "SHA-256" in message


def test_flipped_byte_with_a_forged_manifest_fails_age_authentication(  # type: ignore[no-untyped-def]
    pg_server, source, backup
) -> None:
    folder, identities, _ = backup
    path = folder / PG_FILE
    flip_middle_byte(path)
    forge_pg_entry(folder)
    message, stack, _ = _refused(pg_server, source, folder, identities)
    assert stack.calls == []
    assert "age authentication failed" in message


def test_wrong_key_is_refused(pg_server, source, backup) -> None:  # type: ignore[no-untyped-def]
    folder, _, _ = backup
    _, other = keypair()
    message, stack, _ = _refused(pg_server, source, folder, other)
    assert stack.calls == []
    assert "wrong key" in message
    assert PG_FILE in message


def test_missing_part_is_refused(pg_server, source, backup) -> None:  # type: ignore[no-untyped-def]
    folder, identities, _ = backup
    (folder / REDIS_FILE).unlink()
    message, stack, _ = _refused(pg_server, source, folder, identities)
    assert stack.calls == []
    assert REDIS_FILE in message
    assert "missing" in message


def test_backup_of_a_newer_schema_is_refused(pg_server, source, backup) -> None:  # type: ignore[no-untyped-def]
    folder, identities, _ = backup
    rewrite_manifest(
        folder, msgspec.structs.replace(read_manifest(folder), alembic_head="0099_future")
    )
    message, stack, _ = _refused(pg_server, source, folder, identities)
    assert stack.calls == []
    assert "0099_future" in message
    assert "newer release" in message


def test_non_empty_target_is_refused_and_unchanged(pg_server, source, backup) -> None:  # type: ignore[no-untyped-def]
    folder, identities, _ = backup
    database = source["DB_DATABASE"]
    before = checksums(pg_server, database)
    stack = Untouched()
    with pytest.raises(TargetError) as caught:
        restore_backup(local_tools(make_settings(source)), stack, folder, identities)
    assert "not empty" in str(caught.value)
    assert "--replace" in str(caught.value)
    assert stack.calls == ["prepare"]
    assert checksums(pg_server, database) == before


def test_manifest_damage_is_refused(pg_server, source, backup) -> None:  # type: ignore[no-untyped-def]
    folder, identities, _ = backup
    text = (folder / MANIFEST_NAME).read_text()
    (folder / MANIFEST_NAME).write_text(text[: len(text) // 2])
    message, _, _ = _refused(pg_server, source, folder, identities)
    assert MANIFEST_NAME in message


def test_cli_backup_verify_and_refusal_are_one_line_each(
    pg_server: Postgres, source: dict[str, str], tmp_path: Path, marker: str
) -> None:
    seed(pg_server, source["DB_DATABASE"], marker)
    recipient, _ = keypair()
    identity_file = tmp_path / "key.txt"
    env = process_env({**source, "REDIS_PASSWORD": ""})

    def keel(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KEEL, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    made = keel("backup", "--dir", str(tmp_path / "b"), "--recipient", recipient)
    assert made.returncode == 0, made.stderr
    folder = Path(made.stdout.strip())
    assert (
        keel(
            "backup", "verify", "--dir", str(tmp_path / "b"), "latest", "--checksums-only"
        ).returncode
        == 0
    )
    status = keel("backup", "status", "--dir", str(tmp_path / "b"), "--json")
    assert status.returncode == 0
    assert json.loads(status.stdout)["latest"] == folder.name
    identity_file.write_text(generate()[0] + "\n")
    wrong = keel("restore", str(folder), "--identity", str(identity_file))
    assert wrong.returncode == 1
    errors = [line for line in wrong.stderr.splitlines() if line.startswith("keel restore: error:")]
    assert len(errors) == 1, wrong.stderr
    assert "wrong key" in errors[0]
    assert "Traceback" not in wrong.stderr
    missing = keel("restore", str(tmp_path / "nope"))
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1


def test_manifest_round_trips() -> None:
    assert (
        msgspec.json.decode(
            msgspec.json.encode(
                Manifest(
                    format="keel-backup/1",
                    created_at="2026-12-01T00:00:00Z",
                    env="test",
                    source="x",
                    keel_version="0",
                    alembic_head=None,
                    postgres_version="15",
                    redis_version=None,
                    recipients=[],
                    parts=[],
                    duration_s=0.0,
                )
            ),
            type=Manifest,
        ).env
        == "test"
    )


def test_a_dump_damaged_before_encryption_fails_mid_restore_and_rolls_back(
    pg_server: Postgres, source: dict[str, str], tmp_path: Path, marker: str
) -> None:
    """The archive's table of contents is intact (verification passes), its data is cut short:
    pg_restore stops at the first error and its one transaction leaves the target empty."""
    import pyrage

    from keel.secrets.age_keys import parse_recipient

    database = source["DB_DATABASE"]
    seed(pg_server, database, marker)
    add_jobs(pg_server, database, 5000)
    recipient, identities = keypair()
    folder = take_backup(source, tmp_path, recipient)
    tools = local_tools(make_settings(source))
    dump = subprocess.run(
        [*tools.pg(["pg_dump", "-Fc"]).argv],
        env=tools.pg(["pg_dump"]).env,
        capture_output=True,
        check=True,
    ).stdout
    damaged = pyrage.encrypt(dump[: len(dump) * 3 // 4], [parse_recipient(recipient)])
    (folder / PG_FILE).write_bytes(damaged)
    forge_pg_entry(folder, plaintext_size=len(dump) * 3 // 4)

    message, stack, empty = _failed_restore(pg_server, source, folder, identities)
    assert "pg_restore failed" in message
    assert "nothing was restored" in message
    assert stack.calls == ["prepare"]
    assert relations(pg_server, empty) == 0


def test_restore_from_an_older_release_is_migrated_to_head(
    pg_server: Postgres, pg_empty_env: dict[str, str], redis_env: dict[str, str], tmp_path: Path
) -> None:
    """A backup taken at schema 0001 (before users existed), restored by the local stack path:
    migrations bring it to this release's head, and aftercare runs."""
    from keel.backup.stacks import LocalStack
    from keel.db.migrate import migrate

    source = {**pg_empty_env, **redis_env}
    no_snapshot_delay(source)
    asyncio.run(migrate(make_settings(source), "0001_jobs"))
    database = source["DB_DATABASE"]
    pg_server.psql(
        database,
        "INSERT INTO jobs (id, kind, queue, payload, status, attempts, max_attempts, created_at)"
        " VALUES (7, 'echo', 'default', '{}', 'queued', 0, 3, now())",
    )
    recipient, identities = keypair()
    folder = take_backup(source, tmp_path, recipient)
    assert read_manifest(folder).alembic_head == "0001_jobs"

    target_db = pg_server.create_database(f"older_{uuid.uuid4().hex[:8]}")
    target = {**source, "DB_DATABASE": target_db}
    settings = make_settings(target)
    key = f"{settings.app.name}_revoked_tokens:{SESSIONS_RESET_KEY}"
    try:
        report = restore_backup(
            local_tools(settings), LocalStack(settings), folder, identities, log=print
        )
    finally:
        subprocess.run(
            ["redis-cli", "-p", source["REDIS_PORT"], "DEL", key], check=True, capture_output=True
        )
    version = pg_server.psql(target_db, "SELECT version_num FROM alembic_versions").stdout
    assert version.strip() == head_revision()
    assert any("1 queued job(s) sent" in line for line in report.notes), report.notes
    assert pg_server.psql(target_db, "SELECT count(*) FROM users").stdout.strip() == "0"


def test_pg_restore_failing_at_its_first_statement_is_one_line_and_rolls_back(
    pg_server: Postgres, source: dict[str, str], tmp_path: Path, marker: str
) -> None:
    """pg_restore dies while the dump is still streaming in (a type in the target clashes with
    the first table): its error is reported, not a broken pipe, and nothing stays behind."""
    database = source["DB_DATABASE"]
    seed(pg_server, database, marker)
    add_jobs(pg_server, database, 20000)
    recipient, identities = keypair()
    folder = take_backup(source, tmp_path, recipient)
    assert read_manifest(folder).parts[0].plaintext_size > 4 << 16  # far more than a pipe holds

    target = pg_server.create_database(f"clash_{uuid.uuid4().hex[:8]}")
    pg_server.psql(target, "CREATE DOMAIN public.alembic_versions AS integer")
    with pytest.raises(BackupError) as caught:
        restore_backup(
            target_tools(pg_server, source, target),  # type: ignore[arg-type]
            Untouched(),
            folder,
            identities,
        )
    message = str(caught.value)
    assert message.startswith("pg_restore failed"), message
    assert "already exists" in message
    assert relations(pg_server, target) == 0


def test_with_redis_is_refused_up_front_where_redis_cannot_be_loaded(
    pg_server,
    source,
    backup,  # type: ignore[no-untyped-def]
) -> None:
    folder, identities, _ = backup
    message, stack, empty = _failed_restore(pg_server, source, folder, identities, with_redis=True)
    assert "--with-redis" in message
    assert stack.calls == []
    assert relations(pg_server, empty) == 0
