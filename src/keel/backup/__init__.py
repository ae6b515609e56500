"""Encrypted backups and verified restores of a Keel deployment (PostgreSQL + Redis).

A backup is a folder ``<dir>/<UTC stamp>/`` holding ``postgres.dump.age`` (``pg_dump -Fc``),
``redis.rdb.age`` (a Redis RDB snapshot) and ``manifest.json``. Each part is encrypted to the
environment's age recipients while it streams out of the dump tool: no plaintext touches disk.
See ``docs/operations.md`` (Backups and restore) for the runbook.

Modules: :mod:`.stream` (age + SHA-256 on a stream), :mod:`.manifest`, :mod:`.tools` (where
pg_dump/pg_restore/redis-cli run: this host or the Compose stack's containers),
:mod:`.create`, :mod:`.verify`, :mod:`.restore`, :mod:`.aftercare` (jobs and sessions after a
restore, run with the app's settings), :mod:`.catalog` (listing, retention, last-backup age),
:mod:`.commands` (the CLI).
"""
