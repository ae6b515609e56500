"""Authentication: JWT (python-jose, pinned algorithms) and request signatures."""

from __future__ import annotations

import msgspec

from keel.config.types import SecretStr


class AuthSettings(msgspec.Struct, frozen=True, kw_only=True):
    jwt_algorithm: str = msgspec.field(default="HS256", name="JWT_ALGORITHM")
    jwt_expire_minutes: int = msgspec.field(default=15, name="JWT_EXPIRE_MINUTES")
    jwt_secret_key: SecretStr = msgspec.field(default=SecretStr(""), name="JWT_SECRET_KEY")
