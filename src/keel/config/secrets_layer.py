"""The config loader's secrets layer: decrypt ``secrets/<env>.yaml`` in memory, never to disk.

Called by ``keel.config.loader.default_secrets_reader``; ``keel secrets`` uses the same key
locations. It uses :mod:`keel.secrets` (a pure library) and nothing else of the application.
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


def keel_key_dir(environ: Mapping[str, str]) -> Path:
    """Where ``keel secrets init`` keeps dev/prod keys: ``~/.config/keel/keys``."""
    base = environ.get("XDG_CONFIG_HOME") or str(
        Path(environ.get("HOME") or Path.home()) / ".config"
    )
    return Path(base) / "keel" / "keys"


def env_fallbacks(path: Path, env: str, environ: Mapping[str, str]) -> list[tuple[Path, str]]:
    """Keys tried after the sops search: the committed local/test key, then Keel's own."""
    fallback: list[tuple[Path, str]] = []
    if env in COMMITTED_KEY_ENVS:
        fallback.append((committed_key(path, env), f"committed {env} key"))
    fallback.append((keel_key_dir(environ) / f"{env}.agekey", f"keel {env} key"))
    return fallback


def identities_for(path: Path, *, environ: Mapping[str, str], env: str) -> Identities:
    return find_identities(environ, fallback=env_fallbacks(path, env, environ))


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
