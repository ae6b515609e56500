"""Backup and restore: time and size for a database of ~100k jobs (the local, non-Docker path).

Starts its own PostgreSQL and Redis (as the service tests do), migrates, inserts BENCH_JOBS
(default 100,000) jobs with realistic payloads and results plus 1,000 users, then times
`create_backup` (pg_dump -Fc + Redis RDB, age-encrypted while streaming), `verify_backup`
(SHA-256, full decryption, pg_restore --list) and the restore into an empty database
(verify + pg_restore --single-transaction). Figures: seconds, encrypted and plaintext sizes,
MB/s. The Compose path adds about 3 s per `docker compose exec` (see the restore drill's RTO).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

import os  # noqa: E402

from backing import keel_settings  # noqa: E402
from tests.service.servers import Postgres, RedisServer  # noqa: E402

JOBS = int(os.environ.get("BENCH_JOBS", "100000"))


def _seed(pg: Postgres, database: str) -> None:
    pg.psql(
        database,
        "INSERT INTO users SELECT g, 'user' || g, "
        "'$argon2id$v=19$m=65536,t=3,p=4$' || md5(g::text), "
        "'[\"user\"]', true, now(), now() FROM generate_series(1, 1000) g;"
        "INSERT INTO jobs (id, kind, queue, payload, status, attempts, max_attempts, result, "
        "error, idempotency_key, worker_id, run_after, created_at, started_at, finished_at) "
        "SELECT g, 'checksum', 'default', "
        "jsonb_build_object('data', md5(g::text) || md5((g + 1)::text), 'n', g), "
        "CASE WHEN g % 10 = 0 THEN 'queued' ELSE 'succeeded' END, 1, 3, "
        "jsonb_build_object('sha256', md5(g::text) || md5(g::text)), NULL, 'idem-' || g, "
        "'worker-1', NULL, now() - (g || ' seconds')::interval, now(), now() "
        f"FROM generate_series(1, {JOBS}) g",
    )


def main() -> int:
    import asyncio

    from keel.backup.create import create_backup
    from keel.backup.restore import Stack, restore_backup
    from keel.backup.tools import local_tools
    from keel.backup.verify import verify_backup
    from keel.db.migrate import migrate
    from keel.secrets.age_keys import Identities, generate

    pg = Postgres()
    pg.init()
    pg.start()
    redis = RedisServer(Path(tempfile.mkdtemp(prefix="keel-bench-redis-")))
    redis.start()
    try:
        pg.create_database("source")
        env = {**pg.env("source"), **redis.env()}
        asyncio.run(migrate(keel_settings(env)))
        began = time.monotonic()
        _seed(pg, "source")
        print(f"seeded {JOBS:,} jobs + 1,000 users in {time.monotonic() - began:.1f}s")
        db_size = pg.psql("source", "SELECT pg_database_size('source')").stdout.strip()

        identity, recipient = generate()
        identities = Identities()
        identities.add_text(identity, "bench key")
        with tempfile.TemporaryDirectory(prefix="keel-bench-backup-") as tmp:
            began = time.monotonic()
            marks: dict[str, float] = {}

            def mark(line: str) -> None:
                marks[line.split(maxsplit=1)[0]] = time.monotonic()

            result = create_backup(
                local_tools(keel_settings(env)),
                env="local",
                directory=Path(tmp),
                recipients=[recipient],
                log=mark,
            )
            backup_s = time.monotonic() - began
            pg_s = marks["snapshotting"] - marks["dumping"]
            part = result.manifest.part("postgres")
            assert part is not None
            began = time.monotonic()
            verify_backup(result.folder, identities, local_tools(keel_settings(env)))
            verify_s = time.monotonic() - began

            pg.create_database("target")
            target = local_tools(keel_settings({**env, "DB_DATABASE": "target"}))
            began = time.monotonic()
            report = restore_backup(target, Stack(), result.folder, identities)
            restore_s = time.monotonic() - began
            count = pg.psql("target", "SELECT count(*) FROM jobs").stdout.strip()
            assert int(count) == JOBS, count

        mb = part.plaintext_size / 1e6
        print(f"database on disk: {int(db_size) / 1e6:.1f} MB")
        print(
            f"backup:  {backup_s:.2f}s  (pg_dump -Fc {mb:.1f} MB -> age {part.size / 1e6:.1f} MB, "
            f"pg_dump part {pg_s:.2f}s; the rest is the Redis snapshot, which waits Redis' "
            "repl-diskless-sync-delay, 5 s by default)"
        )
        print(f"verify:  {verify_s:.2f}s  (SHA-256 + full decryption + pg_restore --list)")
        print(
            f"restore: {restore_s:.2f}s  (verify + pg_restore --single-transaction "
            f"{report.restore_s:.2f}s) -> {count} jobs back"
        )
    finally:
        redis.stop()
        pg.stop()
        pg.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
