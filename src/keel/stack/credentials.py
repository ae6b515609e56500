"""The DB and Redis passwords for the stack's secrets, from the env's SOPS file.

Same source as ``keel credentials export`` in the Compose stack: the settings the app loads, so
postgres and redis are initialised with exactly the passwords the app will use. Written to a
0700 directory as 0400 files (Swarm then keeps them encrypted in its Raft log); never printed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from keel.config import SecretStr, load
from keel.stack.compose_files import StackError

NAMES = {"db_password": ("db", "password"), "redis_password": ("redis", "password")}


def _write_private(directory: Path, name: str, value: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
        os.chmod(tmp, 0o400)
        os.replace(tmp, directory / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export(env: str, root: Path, age_key: Path, directory: Path) -> None:
    """Write ``db_password`` and ``redis_password`` of ``env`` into ``directory``."""
    if not age_key.is_file():
        raise StackError(
            f"the {env} age key {age_key} does not exist: set KEEL_AGE_KEY_FILE or run "
            f"`make secrets-init ENV={env}`"
        )
    # Only the key: the operator's shell variables must not change the passwords.
    settings = load(env, root=root, environ={"SOPS_AGE_KEY_FILE": str(age_key), "APP_ENV": env})
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    for name, (section, attr) in NAMES.items():
        value = getattr(getattr(settings, section), attr)
        text = value.reveal() if isinstance(value, SecretStr) else str(value or "")
        if not text:
            raise StackError(
                f"secrets/{env}.yaml: {section.upper()}_{attr.upper()} is empty; the stack's "
                f"{name} secret needs it (`make secrets-edit ENV={env}`)"
            )
        _write_private(directory, name, text)
