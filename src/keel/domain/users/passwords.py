"""Argon2id password hashing (argon2-cffi, its RFC 9106 low-memory profile)."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # Argon2id, t=3, m=64 MiB, p=4: argon2-cffi's default profile


@functools.cache
def _dummy_hash() -> str:
    """Verified when the username is unknown, so both cases take the same time.

    Made on first use, not at import: commands that never verify a password skip its cost.
    """
    return _hasher.hash("keel-timing-equaliser")


MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return (
            _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password too short (at least {MIN_PASSWORD_LENGTH} characters)"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"password too long (at most {MAX_PASSWORD_LENGTH} characters)"
    return None
