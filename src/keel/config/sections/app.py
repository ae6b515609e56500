"""Application identity and debug switches."""

from __future__ import annotations

import msgspec

from keel.config.types import AppEnv


class AppSettings(msgspec.Struct, frozen=True, kw_only=True):
    env: AppEnv = msgspec.field(default="local", name="APP_ENV")
    name: str = msgspec.field(default="keel", name="APP_NAME")
    debug: bool = msgspec.field(default=False, name="DEBUG")
    echo_config: bool = msgspec.field(default=False, name="ECHO_CONFIG")
