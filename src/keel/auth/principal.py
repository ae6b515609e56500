"""Who is calling: a person (JWT) or a service (API key signature)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["user", "service"]
    # users.id for a person, api_keys.id for a service.
    id: int
    # The username, or the API key's name.
    name: str
    roles: frozenset[str]
    # JWT only: the access token's id and expiry (logout revokes it until then).
    token_jti: str | None = None
    token_expires_at: int | None = None

    def has_role(self, role: str) -> bool:
        return role in self.roles


# Ids are positive signed 64-bit integers (snowflakes, BIGINT columns).
MAX_ID = 2**63 - 1


def parse_id(text: str) -> int | None:
    """``text`` as a row id, or None when it is not one (non-digits, zero, beyond 64 bits)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None
