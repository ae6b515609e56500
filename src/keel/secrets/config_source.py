"""The config loader's secrets layer: decrypt ``secrets/<env>.yaml`` in memory, never to disk.

Integration module (called by ``keel.config.loader.default_secrets_reader``); it imports no
application code.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keel.secrets.age_keys import Identities, find_identities
from keel.secrets.document import decrypt_file
from keel.secrets.errors import NoIdentityError, NoMatchingKeyError, SopsError

# Environments whose private key is committed (clearly not for real use): tests and laptops
# decrypt without any setup.
COMMITTED_KEY_ENVS = frozenset({"local", "test"})


class SecretsFileError(Exception):
    """One line naming the file and what to do; the loader shows it as a config problem."""


def committed_key(path: Path, env: str) -> Path:
    return path.parent / "keys" / f"{env}.agekey"


def identities_for(path: Path, *, environ: Mapping[str, str], env: str) -> Identities:
    fallback: list[tuple[Path, str]] = []
    if env in COMMITTED_KEY_ENVS:
        fallback.append((committed_key(path, env), f"committed {env} key"))
    return find_identities(environ, fallback=fallback)


def read_env_secrets(path: Path, *, environ: Mapping[str, str], env: str) -> dict[str, Any]:
    """The decrypted tree of ``path`` (nested maps allowed), MAC verified."""
    try:
        identities = identities_for(path, environ=environ, env=env)
        return decrypt_file(path, identities=identities).tree()
    except NoIdentityError as exc:
        raise SecretsFileError(
            f"{exc}; create a key with `make secrets-init ENV={env}` (`keel secrets init {env}`) "
            "or point SOPS_AGE_KEY_FILE at your key file"
        ) from None
    except NoMatchingKeyError as exc:
        raise SecretsFileError(
            f"{exc}; set SOPS_AGE_KEY_FILE to a key the file is encrypted for "
            f"(`make secrets-init ENV={env}` creates one for a new environment)"
        ) from None
    except SopsError as exc:
        raise SecretsFileError(str(exc.at(path))) from None
