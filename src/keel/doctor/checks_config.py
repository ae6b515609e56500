"""Configuration and secrets: the env file, the SOPS file, its key, recipients, and the load."""

from __future__ import annotations

from pathlib import Path

from keel.doctor.context import DoctorContext
from keel.doctor.model import DOCS, Check, Outcome, fail, ok, skip, warn

_SECRETS_DOCS = "docs/secrets.md"


async def env_file(ctx: DoctorContext) -> Outcome:
    path = ctx.env_file
    if path.is_file():
        return ok(f"{path} present")
    present = sorted(p.parent.name for p in (ctx.root / "configs").glob("*/app.env"))
    return fail(
        f"{path} does not exist (environments here: {', '.join(present) or 'none'})",
        f"run from the repository root or set KEEL_ROOT; APP_ENV is one of {', '.join(present)}"
        if present
        else "run from the repository root or set KEEL_ROOT to it",
    )


async def secrets_file(ctx: DoctorContext) -> Outcome:
    path = ctx.secrets_file
    if path.is_file():
        return ok(f"{path} present")
    return fail(f"{path} does not exist")


def _identities(ctx: DoctorContext) -> object:
    from keel.config.secrets_layer import identities_for

    cached = ctx.probe("identities")
    if cached is None:
        try:
            cached = identities_for(ctx.secrets_file, environ=ctx.environ, env=ctx.env)
        except Exception as exc:  # noqa: BLE001 - the library's message is the answer
            cached = exc
        ctx.remember("identities", cached)
    return cached


async def secrets_key(ctx: DoctorContext) -> Outcome:
    from keel.secrets.age_keys import Identities

    found = _identities(ctx)
    if isinstance(found, Exception):
        return fail(str(found))
    assert isinstance(found, Identities)
    if not found:
        looked = "; ".join(found.looked + found.skipped)
        return fail(f"no age key found (looked at: {looked})")
    return ok(
        f"{len(found.keys)} age identit{'y' if len(found.keys) == 1 else 'ies'} from "
        f"{', '.join(found.sources)}"
    )


async def secrets_decrypt(ctx: DoctorContext) -> Outcome:
    from keel.secrets.age_keys import Identities
    from keel.secrets.document import decrypt_file
    from keel.secrets.errors import SopsError

    path = ctx.secrets_file
    if not path.is_file():
        return skip(f"no {path.name} (see secrets.file)")
    found = _identities(ctx)
    if not isinstance(found, Identities) or not found:
        return skip("no usable age key (see secrets.key)")
    try:
        doc = decrypt_file(path, identities=found)
    except SopsError as exc:
        return fail(str(exc))
    return ok(f"{path.name} decrypts, MAC verified ({len(doc.tree())} top-level keys)")


async def secrets_recipients(ctx: DoctorContext) -> Outcome:
    from keel.secrets import sops_config
    from keel.secrets.errors import SopsError
    from keel.secrets.metadata import parse_metadata
    from keel.secrets.stores import format_for, load_encrypted, require_metadata

    path = ctx.secrets_file
    if not path.is_file():
        return skip(f"no {path.name} (see secrets.file)")
    config = sops_config.find_config(path.parent)
    if config is None:
        return skip("no .sops.yaml here (inside an image the rules are not needed)")
    try:
        rule = sops_config.rule_for(path, config)
        parsed = load_encrypted(path.read_bytes(), format_for(path))
        metadata = parse_metadata(require_metadata(parsed))
    except (SopsError, OSError) as exc:
        return fail(str(exc))
    wanted = {r for group in rule.plan.groups for r in group}
    have = {key.recipient for group in metadata.key_groups for key in group.age}
    if wanted == have:
        return ok(f"{path.name} is encrypted for the {len(have)} recipient(s) of {config.name}")
    parts = []
    if wanted - have:
        parts.append("missing " + ", ".join(sorted(wanted - have)))
    if have - wanted:
        parts.append("not in .sops.yaml " + ", ".join(sorted(have - wanted)))
    return fail(f"{path.name} recipients differ from {config}: {'; '.join(parts)}")


async def config_load(ctx: DoctorContext) -> Outcome:
    loaded, problems, guards = ctx.load_config()
    every = problems + guards
    if every:
        return fail(f"{len(every)} problem(s):\n" + "\n".join(f"- {p}" for p in every))
    assert loaded is not None
    return ok(f"APP_ENV={ctx.env} loads and validates")


def _guard(keyword: str) -> object:
    async def run(ctx: DoctorContext) -> Outcome:
        settings = ctx.settings
        if settings.app.env != "prod":
            return skip(f"prod only (APP_ENV={settings.app.env})")
        _, _, guards = ctx.load_config()
        hits = [p for p in guards if keyword in p]
        if hits:
            return fail("; ".join(hits))
        return ok(f"{keyword.strip(':')} is acceptable for prod")

    return run


async def placeholder_secrets(ctx: DoctorContext) -> Outcome:
    settings = ctx.settings
    if settings.app.env != "prod":
        return skip(f"prod only (APP_ENV={settings.app.env})")
    _, _, guards = ctx.load_config()
    hits = [p for p in guards if "placeholder" in p or "too short" in p or "required in prod" in p]
    if hits:
        return fail("; ".join(hits))
    return ok("no placeholder, short or missing secrets")


async def log_dir(ctx: DoctorContext) -> Outcome:
    import os
    import shutil
    import tempfile

    settings = ctx.settings
    files = [f for f in (settings.log.file, settings.log.startup_file) if f]
    if not files:
        return skip("LOG_FILE unset: logs go to stdout only")
    directory = Path(files[0]).parent
    if not directory.is_absolute():
        directory = settings.root / directory
    if not directory.is_dir():
        return fail(f"log directory {directory} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".keel-doctor-"):
            pass
    except OSError as exc:
        return fail(f"cannot write in {directory}: {exc.strerror or exc} (uid {os.getuid()})")
    usage = shutil.disk_usage(directory)
    free_mb = usage.free // (1 << 20)
    if free_mb < ctx.min_free_mb:
        return fail(
            f"{directory}: {free_mb} MiB free, below {ctx.min_free_mb} MiB",
            "free space on the log volume (LOG_RETENTION, LOG_COMPRESSION shrink old files)",
        )
    percent = 100 * usage.free / usage.total if usage.total else 100.0
    if percent < 5:
        return warn(f"{directory}: only {percent:.1f} % free ({free_mb} MiB)")
    return ok(f"{directory} writable, {free_mb} MiB free ({percent:.0f} %)")


CHECKS = [
    Check(
        "config.env_file",
        "environment config file",
        env_file,
        fix="run from the repository root or set KEEL_ROOT",
        docs=f"{DOCS}#bring-up-per-environment",
    ),
    Check(
        "secrets.file",
        "SOPS secrets file",
        secrets_file,
        fix="create it: `make secrets-init ENV=<env>` (or copy the file you were given)",
        docs=f"{_SECRETS_DOCS}",
    ),
    Check(
        "secrets.key",
        "age key present and readable",
        secrets_key,
        fix="set SOPS_AGE_KEY_FILE to your key file (`make secrets-init ENV=<env>` creates one); "
        "it must be readable by this user",
        docs=f"{DOCS}#secrets-in-the-stack",
    ),
    Check(
        "secrets.decrypt",
        "secrets decrypt (MAC)",
        secrets_decrypt,
        fix="the key is not a recipient: `keel secrets updatekeys <env>` from a machine that has "
        "one, or use the right SOPS_AGE_KEY_FILE",
        docs=f"{_SECRETS_DOCS}",
    ),
    Check(
        "secrets.recipients",
        "recipients match .sops.yaml",
        secrets_recipients,
        fix="`keel secrets updatekeys <env>` re-encrypts the data key for the .sops.yaml rule",
        docs=f"{_SECRETS_DOCS}",
    ),
    Check(
        "config.load",
        "configuration loads",
        config_load,
        fix="correct each key named above (`keel config show` shows where each value comes from)",
        docs="docs/architecture.md#how-the-process-is-put-together",
    ),
    Check(
        "prod.debug",
        "DEBUG off in prod",
        _guard("DEBUG:"),  # type: ignore[arg-type]
        fix="set DEBUG=false in configs/prod/app.env and the environment",
    ),
    Check(
        "prod.cors",
        "no wildcard CORS in prod",
        _guard("CORS_ORIGINS:"),  # type: ignore[arg-type]
        fix="list the exact origins in CORS_ORIGINS",
    ),
    Check(
        "prod.secrets",
        "no placeholder secrets in prod",
        placeholder_secrets,
        fix="put a real value in: `openssl rand -base64 32 | keel secrets set prod NAME` "
        "(or `keel secrets init prod --force` for a new file)",
        docs=_SECRETS_DOCS,
    ),
    Check(
        "host.log_dir",
        "log directory writable with free space",
        log_dir,
        fix="create the directory (or mount the logs volume) writable for the service user",
        docs=f"{DOCS}#logs",
    ),
]
