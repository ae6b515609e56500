"""The ``users`` and ``api_keys`` tables."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from keel.db.base import Base
from keel.db.types import JsonDocument, UtcDateTime


class User(Base):
    __tablename__ = "users"

    # A snowflake from keel.ids, assigned by the application.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # Argon2id in PHC string form ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(JsonDocument)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # The public half, sent in X-Keel-Key-Id.
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # AES-GCM ciphertext of the signing secret, bound to key_id (keel.auth.crypto).
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    roles: Mapped[list[str]] = mapped_column(JsonDocument)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
