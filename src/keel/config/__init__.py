"""Layered, typed, validated settings. Entry point: :func:`load`."""

from keel.config.errors import ConfigError
from keel.config.loader import LoadedConfig, load, load_with_sources
from keel.config.settings import Settings
from keel.config.types import ENVIRONMENTS, AppEnv, SecretStr, Source

__all__ = [
    "ENVIRONMENTS",
    "AppEnv",
    "ConfigError",
    "LoadedConfig",
    "SecretStr",
    "Settings",
    "Source",
    "load",
    "load_with_sources",
]
