"""API key secrets at rest: AES-256-GCM under a key derived from ``API_KEY_ENCRYPTION_KEY``.

The server must know a key's secret to check an HMAC, so it cannot store only a hash. The
ciphertext is bound to its key id (AEAD associated data): a row's secret cannot be moved to
another key id. Format: ``v1.<base64url(nonce | ciphertext+tag)>``.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"keel/api-key-secrets/v1"
_PREFIX = "v1."


class SecretCipherError(Exception):
    """A stored secret cannot be decrypted (wrong API_KEY_ENCRYPTION_KEY or a damaged row)."""


class SecretCipher:
    def __init__(self, master_key: str) -> None:
        if len(master_key) < 16:
            raise ValueError("API_KEY_ENCRYPTION_KEY: at least 16 characters")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            master_key.encode()
        )
        self._aead = AESGCM(derived)

    def encrypt(self, key_id: str, secret: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), key_id.encode())
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, key_id: str, blob: str) -> bytes:
        if not blob.startswith(_PREFIX):
            raise SecretCipherError(f"api key {key_id}: unknown secret format")
        try:
            raw = base64.urlsafe_b64decode(blob[len(_PREFIX) :])
            return self._aead.decrypt(raw[:12], raw[12:], key_id.encode())
        except (InvalidTag, ValueError):
            raise SecretCipherError(
                f"api key {key_id}: secret does not decrypt (API_KEY_ENCRYPTION_KEY changed?)"
            ) from None
