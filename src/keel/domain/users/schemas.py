"""Request and response bodies (msgspec)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

Username = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    username: Username
    password: Password


class RefreshRequest(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: Token


class LogoutRequest(msgspec.Struct, forbid_unknown_fields=True):
    # Also revoke this refresh token (it must belong to the same user).
    refresh_token: Token | None = None


class TokenPair(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str


class UserOut(msgspec.Struct):
    # A string: snowflakes exceed the integers JavaScript can hold exactly.
    id: str
    username: str
    roles: list[str]
    is_active: bool
    created_at: dt.datetime


class Caller(msgspec.Struct):
    kind: str
    name: str
    roles: list[str]
