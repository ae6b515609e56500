"""API key lookup for the authentication middleware, with a short in-process cache.

A signed request must not cost a database round trip every time, so an active key's decrypted
secret is kept for ``API_KEY_CACHE_SECONDS`` (10 s). The price: disabling a key takes up to that
long to bite on each API process. Unknown key ids are not cached (they count as failures).
"""

from __future__ import annotations

import time

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.auth.crypto import SecretCipher, SecretCipherError
from keel.auth.signatures import ApiKeyRecord
from keel.domain.users.services import ApiKeyService

CACHE_SECONDS = 10.0
_MAX_ENTRIES = 10_000


class DbApiKeyDirectory:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: SecretCipher,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self._sessions = sessions
        self.cipher = cipher
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, ApiKeyRecord]] = {}

    async def find(self, key_id: str) -> ApiKeyRecord | None:
        now = time.monotonic()
        hit = self._cache.get(key_id)
        if hit is not None and hit[0] > now and self.cache_seconds > 0:
            return hit[1]
        async with self._sessions() as session:
            row = await ApiKeyService(session, self.cipher).find_active(key_id)
        if row is None:
            self._cache.pop(key_id, None)
            return None
        try:
            secret = self.cipher.decrypt(row.key_id, row.secret_ciphertext)
        except SecretCipherError as exc:
            logger.error("{}", exc)
            return None
        record = ApiKeyRecord(
            key_id=row.key_id, name=row.name, secret=secret, roles=tuple(row.roles), id=row.id
        )
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()
        self._cache[key_id] = (now + self.cache_seconds, record)
        return record
