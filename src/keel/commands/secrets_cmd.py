"""``keel secrets``: keygen, init, decrypt, encrypt, show, edit, set, unset, rotate, updatekeys.

The CLI over the :mod:`keel.secrets` library; it may use ``keel.config`` (settings validation,
the list of secret fields, the key locations of :mod:`keel.config.secrets_layer`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import secrets as pysecrets
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keel.config.secrets_layer import COMMITTED_KEY_ENVS, env_fallbacks, keel_key_dir
from keel.secrets import age_keys, sops_config
from keel.secrets.age_keys import Identities
from keel.secrets.document import Decrypted, KeyPlan, decrypt_file, encrypt_bytes, reencrypt
from keel.secrets.errors import FormatError, SopsError
from keel.secrets.model import Branch, Comment, from_plain, to_plain
from keel.secrets.rules import RULE_KEYS, rule_from_options
from keel.secrets.stores import FORMATS, emit_plain, format_for, load_plain

ENVIRONMENTS = ("local", "dev", "test", "prod")
# Secrets that are not a random string: URLs embed a password init generates separately, and
# PEM keys / key-ring JSON have a structure (create those by hand, usually as *_FILE).
_NOT_GENERATED = re.compile(r"_URL$|_PRIVATE_KEY$|_PUBLIC_KEYS?$|_VERIFY_KEYS$")
# Words a generated value must not contain: the prod guard treats them as placeholders.
_AVOID = re.compile(r"secret|password|example|change|todo|xxxx|1234|test|dev|local|insecure",
                    re.IGNORECASE)  # fmt: skip


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


# --- helpers -------------------------------------------------------------------------------


def _root(args: argparse.Namespace) -> Path:
    if getattr(args, "root", None):
        return Path(args.root).resolve()
    return Path(os.environ.get("KEEL_ROOT") or Path.cwd()).resolve()


def _env_of(path: Path) -> str | None:
    """``dev`` for ``…/secrets/dev.yaml``: the env whose fallback keys apply."""
    if path.parent.name == "secrets" and path.stem in ENVIRONMENTS:
        return path.stem
    return None


def _identities(path: Path, args: argparse.Namespace) -> Identities:
    explicit = [Path(p) for p in (getattr(args, "identity", None) or [])]
    env = _env_of(path)
    fallback = env_fallbacks(path, env, os.environ) if env is not None else []
    return age_keys.find_identities(os.environ, explicit=explicit, fallback=fallback)


def _target(args: argparse.Namespace) -> Path:
    """ENV (``dev``) → ``<root>/secrets/dev.yaml``; anything else is a file path."""
    name: str = args.env
    if name in ENVIRONMENTS:
        return _root(args) / "secrets" / f"{name}.yaml"
    return Path(name)


def _open(path: Path, args: argparse.Namespace) -> Decrypted:
    if not path.is_file():
        env = _env_of(path)
        hint = f"; create it with `keel secrets init {env}`" if env else ""
        raise CommandError(f"{path}: does not exist{hint}")
    return decrypt_file(path, identities=_identities(path, args))


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` in one step: readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def shred(path: Path) -> None:
    """Overwrite then delete a plaintext temp file (best effort on journaling filesystems)."""
    with contextlib.suppress(OSError):
        size = path.stat().st_size
        with path.open("r+b") as handle:
            handle.write(b"\0" * size)
            handle.flush()
            os.fsync(handle.fileno())
    with contextlib.suppress(OSError):
        path.unlink()


def _flat_items(tree: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in tree.items():
        name = f"{prefix}_{key}".upper() if prefix else str(key).upper()
        if isinstance(value, Mapping):
            items.extend(_flat_items(value, name))
        else:
            items.append((name, value))
    return items


def _mask(value: Any) -> str:
    text = "" if value is None else str(value)
    return "(empty)" if not text else f"****({len(text)} chars)"


def _validate(env: str | None, root: Path, tree: dict[str, Any]) -> None:
    """Load the env's settings with ``tree`` as its secrets layer; raise on any problem."""
    if env is None:
        return
    from keel.config import ConfigError, load

    def reader(_path: Path, _environ: Mapping[str, str], _env: str) -> Mapping[str, Any]:
        return tree

    environ = {k: v for k, v in os.environ.items() if k != "APP_ENV"}
    try:
        load(env, root=root, environ=environ, secrets_reader=reader)
    except ConfigError as exc:
        problems = "; ".join(exc.problems)
        raise CommandError(
            f"the secrets do not pass the {env} settings validation: {problems}"
        ) from None


def generate_value(nbytes: int = 32) -> str:
    """A URL-safe random value that the prod placeholder guard never mistakes for a template."""
    while True:
        value = pysecrets.token_urlsafe(nbytes)
        if not _AVOID.search(value) and value[0] not in "-_":
            return value


def secret_setting_names() -> list[str]:
    from keel.config.fields import field_specs

    return [
        name
        for name, spec in field_specs().items()
        if spec.secret and not _NOT_GENERATED.search(name)
    ]


# --- commands ------------------------------------------------------------------------------


def cmd_keygen(args: argparse.Namespace) -> int:
    identity, recipient = age_keys.generate()
    text = key_file_text(identity, recipient, note=args.comment)
    if args.output:
        out = Path(args.output)
        if out.exists() and not args.force:
            raise CommandError(f"{out}: already exists (use --force to overwrite)")
        write_atomic(out, text.encode(), mode=0o600)
        print(f"Public key: {recipient}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def key_file_text(identity: str, recipient: str, *, note: str | None = None) -> str:
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [f"# created: {created}", f"# public key: {recipient}"]
    if note:
        lines.insert(0, f"# {note}")
    return "\n".join([*lines, identity, ""])


def _env_key_path(env: str, root: Path, args: argparse.Namespace) -> Path:
    if args.key_file:
        return Path(args.key_file).expanduser()
    if env in COMMITTED_KEY_ENVS or args.in_repo:
        return root / "secrets" / "keys" / f"{env}.agekey"
    return keel_key_dir(os.environ) / f"{env}.agekey"


def _public_key_of(key_path: Path) -> str | None:
    if not key_path.is_file():
        return None
    for line in key_path.read_text().splitlines():
        if line.strip().startswith(age_keys.SECRET_KEY_PREFIX):
            return age_keys.public_of(line)
    return None


def _check_existing_rule(
    env: str, config: Path, recipients: list[str], key_path: Path, args: argparse.Namespace
) -> None:
    """Refuse to encrypt new secrets to keys already in the env's rule unless told which way.

    A cloned repository's ``.sops.yaml`` may name the dev key of whoever set it up; silently
    adding the newcomer's key would also encrypt the new secrets to a key they do not hold.
    """
    own = _public_key_of(key_path)
    if not recipients or own in recipients or args.add_recipient or args.replace_rule:
        return
    listed = ", ".join(r[:12] + "…" for r in recipients)
    raise CommandError(
        f"{config} already has a rule for secrets/{env}.yaml naming {len(recipients)} other "
        f"key(s) ({listed}), not yours ({key_path}): the new secrets would be readable with "
        f"those keys too. Pass --replace-rule to make the rule name only your key (your own "
        f"{env} environment), or --add-recipient to encrypt to those keys and yours (a shared "
        f"one); to join a teammate's existing secrets/{env}.yaml instead, send them your public "
        f"key for `keel secrets updatekeys {env}`"
    )


def _ensure_key(env: str, root: Path, args: argparse.Namespace) -> tuple[Path, str]:
    """The env's key file (created if missing) and its public key."""
    key_path = _env_key_path(env, root, args)
    if key_path.is_file():
        identities = Identities()
        identities.add_file(key_path, "key file")
        for line in key_path.read_text().splitlines():
            if line.strip().startswith(age_keys.SECRET_KEY_PREFIX):
                return key_path, age_keys.public_of(line)
        raise CommandError(f"{key_path}: holds no age identity")
    identity, recipient = age_keys.generate()
    note = (
        f"{env.upper()} KEY, NOT FOR REAL USE: committed to git for the {env} environment"
        if env in COMMITTED_KEY_ENVS
        else f"age key for Keel's {env} secrets; never commit it"
    )
    key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(key_path, key_file_text(identity, recipient, note=note).encode(), mode=0o600)
    print(f"created {key_path} (public key {recipient})", file=sys.stderr)
    return key_path, recipient


def cmd_init(args: argparse.Namespace) -> int:
    env: str = args.env
    root = _root(args)
    target = root / "secrets" / f"{env}.yaml"
    if target.exists() and not args.force:
        raise CommandError(
            f"{target}: already exists; change values with `keel secrets set {env} KEY VALUE`, "
            f"`keel secrets edit {env}` or `keel secrets rotate {env}` (or pass --force)"
        )
    config = root / sops_config.CONFIG_NAME
    recipients = sops_config.recipients_in(config, env)
    _check_existing_rule(env, config, recipients, _env_key_path(env, root, args), args)
    key_path, recipient = _ensure_key(env, root, args)
    if args.replace_rule and recipients != [recipient]:
        sops_config.set_env_rule(config, env, [recipient])
        print(f"{config}: rule for secrets/{env}.yaml now names only your key {recipient}")
    elif recipient not in recipients:
        recipients.append(recipient)
        sops_config.set_env_rule(config, env, recipients)
        print(f"{config}: rule for secrets/{env}.yaml now lists {len(recipients)} recipient(s)")
    values = {name: generate_value(48 if "JWT" in name else 32) for name in secret_setting_names()}
    tree = Branch([(Comment(f" {env} secrets: edit with `keel secrets edit {env}`"), None)])
    tree.extend(from_plain(values))
    creation = sops_config.rule_for(target, config)
    plain = emit_plain([tree], "yaml")
    data = encrypt_bytes(
        plain,
        "yaml",
        plan=creation.plan,
        rule=creation.rule,
        mac_only_encrypted=creation.mac_only_encrypted,
        label=str(target),
    )
    write_atomic(target, data)
    print(f"wrote {target}: {', '.join(values)} (random values, encrypted)")
    try:
        _validate(env, root, values)
    except CommandError as exc:
        # Other settings of the env may still be incomplete; the secrets file is fine.
        print(f"note: {exc}", file=sys.stderr)
    if env not in COMMITTED_KEY_ENVS:
        print(
            f"decrypt with: SOPS_AGE_KEY_FILE={key_path} (give hosts and CI this file as a "
            "secret file, never as an environment variable)"
        )
    return 0


def cmd_decrypt(args: argparse.Namespace) -> int:
    path = Path(args.file)
    fmt = format_for(path, args.input_type)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"{path}: cannot read: {exc.strerror or exc}") from None
    from keel.secrets.document import decrypt_bytes

    doc = decrypt_bytes(data, fmt, identities=_identities(path, args), label=str(path))
    out_fmt = args.output_type or (fmt if fmt != "binary" else "binary")
    if out_fmt not in FORMATS:
        raise CommandError(f"unknown --output-type {out_fmt!r}; use one of {', '.join(FORMATS)}")
    if args.extract:
        output = _extract(doc.branches[0] if doc.branches else Branch(), args.extract, out_fmt)
    else:
        output = emit_plain(doc.branches, out_fmt)
    sys.stdout.buffer.write(output)
    sys.stdout.flush()
    return 0


_EXTRACT_PART = re.compile(r'\[(?:"((?:[^"\\]|\\.)*)"|(\d+))\]')


def _extract(root: Branch, selector: str, out_fmt: str) -> bytes:
    """``sops decrypt --extract '["a"]["b"][0]'``: a string prints raw, anything else in
    ``out_fmt`` (YAML unless JSON is asked for)."""
    from keel.secrets.stores import json_store, yaml_store

    position, value = 0, root
    for match in _EXTRACT_PART.finditer(selector):
        if match.start() != position:
            break
        position = match.end()
        key, index = match.groups()
        if key is not None and isinstance(value, Branch):
            found = value.get(key.replace('\\"', '"'), _MISSING)
        elif index is not None and isinstance(value, list):
            items = [item for item in value if not isinstance(item, Comment)]
            found = items[int(index)] if int(index) < len(items) else _MISSING
        else:
            found = _MISSING
        if found is _MISSING:
            raise CommandError(f"--extract {selector}: {match.group(0)} not found")
        value = found
    if position != len(selector) or not selector:
        raise CommandError(f'--extract {selector!r}: expected a path like ["key"][0]')
    if isinstance(value, str) and not isinstance(value, Comment):
        return value.encode("utf-8", "surrogateescape")
    if out_fmt == "json":
        return (
            json_store.emit([value])
            if isinstance(value, Branch)
            else json_store.value_text(value).encode()
        )
    return yaml_store.emit_node(value)


_MISSING = object()


def _rule_args(args: argparse.Namespace) -> dict[str, object]:
    return {key: getattr(args, key, None) for key in RULE_KEYS}


def cmd_encrypt(args: argparse.Namespace) -> int:
    path = Path(args.file)
    fmt = format_for(path, args.input_type)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"{path}: cannot read: {exc.strerror or exc}") from None
    options = _rule_args(args)
    if args.age:
        plan = KeyPlan.single([r.strip() for r in args.age.split(",") if r.strip()])
        try:
            rule = rule_from_options(options)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        mac_only = bool(args.mac_only_encrypted)
    else:
        config = Path(args.config) if args.config else None
        creation = sops_config.rule_for(path, config)
        plan = creation.plan
        chosen = {k: v for k, v in options.items() if v}
        try:
            rule = rule_from_options(chosen) if chosen else creation.rule
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        mac_only = bool(args.mac_only_encrypted) or creation.mac_only_encrypted
    encrypted = encrypt_bytes(
        data, fmt, plan=plan, rule=rule, mac_only_encrypted=mac_only, label=str(path)
    )
    if args.in_place:
        write_atomic(path, encrypted)
    elif args.output:
        write_atomic(Path(args.output), encrypted)
    else:
        sys.stdout.buffer.write(encrypted)
        sys.stdout.flush()
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    path = _target(args)
    doc = _open(path, args)
    print(f"# {path} (recipients: {', '.join(doc.metadata.recipients)})")
    for name, value in _flat_items(doc.tree()):
        shown = str(value) if args.reveal else _mask(value)
        print(f"{name}={shown}")
    return 0


def _private_tmp() -> str | None:
    """A RAM-backed folder when there is one, so the plaintext never reaches a disk."""
    shm = Path("/dev/shm")  # noqa: S108 - only as the parent of a mkdtemp 0700 folder
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


def _run_editor(path: Path) -> None:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        result = subprocess.run([*shlex.split(editor), str(path)], check=False)  # noqa: S603
    except OSError as exc:
        raise CommandError(f"cannot start the editor {editor!r}: {exc}") from None
    if result.returncode != 0:
        raise CommandError(
            f"the editor {editor!r} exited with {result.returncode}; nothing written"
        )


def cmd_edit(args: argparse.Namespace) -> int:
    path = _target(args)
    doc = _open(path, args)
    before = emit_plain(doc.branches, doc.fmt)
    workdir = Path(tempfile.mkdtemp(prefix="keel-secrets-", dir=_private_tmp()))  # 0700
    temp = workdir / f"edit{path.suffix or '.txt'}"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(before)
        _run_editor(temp)
        after = temp.read_bytes()
    finally:
        shred(temp)
        with contextlib.suppress(OSError):
            workdir.rmdir()
    if after == before:
        print(f"{path}: no changes")
        return 0
    try:
        branches = load_plain(after, doc.fmt)
    except FormatError as exc:
        raise CommandError(f"{path}: the edited text is invalid ({exc}); nothing written") from None
    if any(k == "sops" for b in branches for k, _ in b if not isinstance(k, Comment)):
        raise CommandError(f"{path}: the edited text has a 'sops' key; nothing written")
    _save_validated(path, args, doc, branches)
    print(f"{path}: saved")
    return 0


def _save_validated(
    path: Path, args: argparse.Namespace, doc: Decrypted, branches: list[Branch] | None = None
) -> None:
    """Re-encrypt ``branches`` (default: ``doc``'s own) over ``path`` if they pass the env's
    settings validation; on a problem nothing is written."""
    branches = doc.branches if branches is None else branches
    tree = to_plain(branches[0]) if branches else {}
    _validate(_env_of(path), _root(args), tree)
    write_atomic(path, reencrypt(doc, branches))


def _key_path(key: str) -> list[str]:
    return [part for part in key.split(".") if part]


def cmd_set(args: argparse.Namespace) -> int:
    path = _target(args)
    doc = _open(path, args)
    value = args.value if args.value is not None else sys.stdin.read().rstrip("\r\n")
    parts = _key_path(args.key)
    branch = doc.branches[0]
    for part in parts[:-1]:
        child = branch.get(part)
        if not isinstance(child, Branch):
            child = Branch()
            branch.set(part, child)
        branch = child
    branch.set(parts[-1], value)
    _save_validated(path, args, doc)
    print(f"{path}: set {args.key}")
    return 0


def cmd_unset(args: argparse.Namespace) -> int:
    path = _target(args)
    doc = _open(path, args)
    parts = _key_path(args.key)
    branch: Any = doc.branches[0]
    for part in parts[:-1]:
        branch = branch.get(part) if isinstance(branch, Branch) else None
    if not isinstance(branch, Branch) or not branch.remove(parts[-1]):
        raise CommandError(f"{path}: has no key {args.key}")
    _save_validated(path, args, doc)
    print(f"{path}: removed {args.key}")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    path = _target(args)
    doc = _open(path, args)
    write_atomic(path, reencrypt(doc, rotate=True))
    print(f"{path}: new data key; every value re-encrypted")
    return 0


def cmd_updatekeys(args: argparse.Namespace) -> int:
    path = _target(args)
    doc = _open(path, args)
    creation = sops_config.rule_for(path, Path(args.config) if args.config else None)
    old = {k.recipient for g in doc.metadata.key_groups for k in g.age}
    new = {r for group in creation.plan.groups for r in group}
    if old == new and len(creation.plan.groups) == len(doc.metadata.key_groups):
        print(f"{path}: recipients already match .sops.yaml")
        return 0
    write_atomic(path, reencrypt(doc, plan=creation.plan))
    for recipient in sorted(new - old):
        print(f"{path}: + {recipient}")
    for recipient in sorted(old - new):
        print(f"{path}: - {recipient}")
    return 0


# --- argparse ------------------------------------------------------------------------------


def _run(func: Any) -> Any:
    def handler(args: argparse.Namespace) -> int:
        try:
            code: int = func(args)
        except (CommandError, SopsError) as exc:
            print(f"keel secrets: {exc}", file=sys.stderr)
            return 1
        return code

    return handler


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("secrets", help="SOPS/age encrypted secrets")
    sub = parser.add_subparsers(dest="secrets_command", metavar="ACTION", required=True)

    def add(name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        p.set_defaults(handler=_run(func))
        return p

    def env_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("env", metavar="ENV", help="local, dev, test, prod (or a file path)")
        p.add_argument("--root", help="repository root (default: $KEEL_ROOT or the cwd)")
        p.add_argument("--identity", action="append", help="age identity file (repeatable)")

    p = add("keygen", cmd_keygen, "generate an age key pair")
    p.add_argument("-o", "--output", help="write the key file here (mode 0600)")
    p.add_argument("--comment", help="a comment line to put in the key file")
    p.add_argument("--force", action="store_true", help="overwrite an existing key file")

    p = add("init", cmd_init, "create a key, a .sops.yaml rule and secrets/ENV.yaml")
    p.add_argument("env", choices=ENVIRONMENTS, metavar="ENV")
    p.add_argument("--root", help="repository root (default: $KEEL_ROOT or the cwd)")
    p.add_argument("--key-file", help="where the env's private key lives (created if missing)")
    p.add_argument(
        "--in-repo", action="store_true", help="keep the key under secrets/keys/ (local/test only!)"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing secrets file")
    rule = p.add_mutually_exclusive_group()
    rule.add_argument(
        "--replace-rule",
        action="store_true",
        help="when .sops.yaml already has a rule for ENV naming other keys: name only yours",
    )
    rule.add_argument(
        "--add-recipient",
        action="store_true",
        help="when .sops.yaml already has a rule for ENV naming other keys: add yours to them",
    )

    p = add("decrypt", cmd_decrypt, "print the plaintext of a SOPS file")
    p.add_argument("file")
    p.add_argument("--output-type", choices=FORMATS)
    p.add_argument("--input-type", choices=FORMATS)
    p.add_argument("--extract", help='print one value, e.g. \'["db"]["password"]\'')
    p.add_argument("--identity", action="append", help="age identity file (repeatable)")

    p = add("encrypt", cmd_encrypt, "encrypt a plaintext file for age recipients")
    p.add_argument("file")
    p.add_argument("--age", help="comma-separated age recipients (default: .sops.yaml rule)")
    p.add_argument("--config", help="path of .sops.yaml (default: nearest one)")
    p.add_argument("--input-type", choices=FORMATS)
    p.add_argument("-i", "--in-place", action="store_true")
    p.add_argument("-o", "--output")
    for key in RULE_KEYS:
        p.add_argument(f"--{key.replace('_', '-')}", dest=key)
    p.add_argument("--mac-only-encrypted", action="store_true")

    _register_env_commands(add, env_arg)


def _register_env_commands(add: Any, env_arg: Any) -> None:
    p = add("show", cmd_show, "list the secrets of ENV (masked unless --reveal)")
    env_arg(p)
    p.add_argument("--reveal", action="store_true", help="print the values in clear")

    p = add("edit", cmd_edit, "edit ENV's secrets in $EDITOR, validate, re-encrypt")
    env_arg(p)

    p = add("set", cmd_set, "set one secret (VALUE from stdin when omitted)")
    env_arg(p)
    p.add_argument("key", metavar="KEY")
    p.add_argument("value", metavar="VALUE", nargs="?")

    p = add("unset", cmd_unset, "remove one secret")
    env_arg(p)
    p.add_argument("key", metavar="KEY")

    p = add("rotate", cmd_rotate, "re-encrypt ENV with a new data key")
    env_arg(p)

    p = add("updatekeys", cmd_updatekeys, "re-wrap ENV's key for the recipients .sops.yaml lists")
    env_arg(p)
    p.add_argument("--config", help="path of .sops.yaml (default: nearest one)")
