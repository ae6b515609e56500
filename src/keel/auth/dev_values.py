"""Secrets that ``APP_ENV=local`` may leave unset: a stable development value instead.

Its own module (no JWT stack, no Litestar) so the operator commands get the same value as the
server: ``keel apikeys create`` must encrypt with the key ``keel serve`` decrypts with.
"""

from __future__ import annotations

import hashlib

from loguru import logger

from keel.auth.errors import AuthConfigError
from keel.config import Settings
from keel.logging import register_secret


def _local_dev_value(settings: Settings, name: str) -> str:
    """A stable per-checkout value for ``APP_ENV=local`` only (server and CLI agree on it)."""
    seed = f"keel-local-dev-only:{name}:{settings.root}".encode()
    return hashlib.sha256(seed).hexdigest()


def required_secret(settings: Settings, name: str, value: str) -> str:
    if value:
        return value
    if settings.app.env == "local":
        generated = _local_dev_value(settings, name)
        register_secret(generated)
        logger.warning("{} not set: using a development value (APP_ENV=local only)", name)
        return generated
    raise AuthConfigError(
        f"{name}: required in APP_ENV={settings.app.env} "
        f"(add it to secrets/{settings.app.env}.yaml, e.g. `keel secrets init`)"
    )
