"""The database: reachable, credentials accepted, the database exists, schema at head."""

from __future__ import annotations

from typing import Any

from keel.doctor.context import DoctorContext
from keel.doctor.model import DOCS, Check, Outcome, fail, ok, skip

_DOCS = f"{DOCS}#troubleshooting"


async def _connect(ctx: DoctorContext) -> Any:
    """One connection attempt, shared by the checks: None when fine, else the error."""
    cached = ctx.probe("db")
    if cached is not None:
        return cached
    from keel.db.engine import ping, sqlalchemy_config
    from keel.db.errors import connect_error
    from keel.db.url import database_target, sqlite_path

    settings = ctx.settings
    target = database_target(settings)
    path = sqlite_path(target)
    if target.type == "sqlite" and path is not None and not path.exists():
        return ctx.remember("db", ("missing-file", target, None))
    engine = sqlalchemy_config(settings, one_shot=True).get_engine()
    try:
        await ping(engine)
    except Exception as exc:  # noqa: BLE001 - classified below
        return ctx.remember("db", ("error", target, connect_error(target, exc, 1)))
    return ctx.remember("db", ("ok", target, engine))


async def reachable(ctx: DoctorContext) -> Outcome:
    from keel.db.errors import Cause

    state, target, detail = await _connect(ctx)
    if state == "missing-file":
        return fail(f"SQLite file {target.database} does not exist", "run `keel migrate`")
    if state == "error" and detail.cause in (Cause.UNREACHABLE, Cause.OTHER):
        return fail(str(detail))
    return ok(f"{target.describe()} answers")


async def credentials(ctx: DoctorContext) -> Outcome:
    from keel.db.errors import Cause

    state, target, detail = await _connect(ctx)
    if target.type == "sqlite":
        return skip("SQLite has no credentials")
    if state == "error":
        if detail.cause is Cause.AUTH:
            return fail(str(detail))
        if detail.cause is not Cause.MISSING_DATABASE:
            return skip("database unreachable (see db.reachable)")
    return ok(f"user {target.url.username} accepted")


async def exists(ctx: DoctorContext) -> Outcome:
    from keel.db.errors import Cause

    state, target, detail = await _connect(ctx)
    if state == "missing-file":
        return skip("see db.reachable")
    if state == "error":
        if detail.cause is Cause.MISSING_DATABASE:
            return fail(str(detail))
        return skip("cannot log in (see db.reachable, db.credentials)")
    return ok(f"database {target.database} exists")


async def schema(ctx: DoctorContext) -> Outcome:
    from keel.db.migrate import current_revision, head_revision

    state, _target, engine = await _connect(ctx)
    if state != "ok":
        return skip("no connection (see db.reachable)")
    current = await current_revision(engine)
    head = head_revision()
    if current == head:
        return ok(f"schema at head {head}")
    return fail(f"schema at {current or 'empty'}, code expects {head}")


async def clock(ctx: DoctorContext) -> Outcome:
    from sqlalchemy import text

    from keel.doctor.skew import judge

    state, _target, engine = await _connect(ctx)
    if state != "ok":
        return skip("no connection (see db.reachable)")
    if engine.dialect.name != "postgresql":
        return skip(f"{engine.dialect.name}: no server clock to compare")
    before = ctx.clock()
    async with engine.connect() as connection:
        server = await connection.execute(text("SELECT extract(epoch FROM clock_timestamp())"))
        server_s = float(server.scalar_one())
    after = ctx.clock()
    return judge("PostgreSQL", server_s, before, after)


async def close(ctx: DoctorContext) -> None:
    cached = ctx.probe("db")
    if cached is not None and cached[0] == "ok":
        await cached[2].dispose()


CHECKS = [
    Check(
        "db.reachable",
        "database reachable",
        reachable,
        fix="start the database (`make up ENV=<env>`, `make ps`) or correct DB_HOST / DB_PORT",
        docs=_DOCS,
    ),
    Check(
        "db.credentials",
        "database credentials accepted",
        credentials,
        fix="DB_USERNAME / DB_PASSWORD must match the server; after rotating DB_PASSWORD run "
        "`ALTER USER keel PASSWORD '...'` (PostgreSQL reads it at initdb only)",
        docs=f"{DOCS}#secrets-in-the-stack",
    ),
    Check(
        "db.exists",
        "database exists",
        exists,
        fix="create it (`createdb` / the postgres container's POSTGRES_DB) or correct DB_DATABASE",
        docs=_DOCS,
    ),
    Check(
        "db.schema",
        "schema at migration head",
        schema,
        fix="run `keel migrate` (in Compose: the `migrate` one-shot, `containers/compose.sh logs "
        "migrate`)",
        docs=f"{DOCS}#upgrades-with-migrations",
    ),
    Check(
        "clock.db",
        "clock skew against the database",
        clock,
        fix="synchronise the host clock (chrony / systemd-timesyncd); snowflake ids and token "
        "expiry depend on it",
        docs=_DOCS,
    ),
]
