"""One ``ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`` value: AES-256-GCM with a 32-byte IV.

The AAD binds a value to its key path (``a:b:``), so a value moved to another key fails to
decrypt. Empty values are never encrypted (sops keeps ``""`` as ``""``).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keel.secrets.errors import ValueDecryptError
from keel.secrets.model import (
    Comment,
    GoTime,
    decode_str,
    parse_go_bool,
    parse_go_float,
    parse_go_int,
    parse_rfc3339,
    to_bytes,
    type_name,
)

# Go's regexp is unanchored at the end; base64 never contains ",", so greedy groups are safe.
_ENC = re.compile(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
IV_SIZE = 32
KNOWN_TYPES = frozenset({"str", "int", "float", "bool", "time", "comment", "bytes"})


@dataclass(frozen=True, slots=True)
class EncValue:
    data: bytes
    iv: bytes
    tag: bytes
    type: str


def is_enc(value: object) -> bool:
    return isinstance(value, str) and value.startswith("ENC[AES256_GCM,")


def parse_enc(text: str) -> EncValue:
    match = _ENC.match(text)
    if not match:
        raise ValueError("malformed ENC[...] value (expected ENC[AES256_GCM,data:,iv:,tag:,type:])")
    data, iv, tag, kind = match.groups()
    try:
        return EncValue(
            data=base64.b64decode(data, validate=True),
            iv=base64.b64decode(iv, validate=True),
            tag=base64.b64decode(tag, validate=True),
            type=kind,
        )
    except (binascii.Error, ValueError):
        raise ValueError("malformed ENC[...] value (bad base64)") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class ValueCipher:
    """Encrypts and decrypts values with one data key; remembers IVs of decrypted values.

    The IV stash (as sops' ``Cipher.stash``) re-uses the ciphertext of a value that comes back
    unchanged at the same path, so editing one secret does not rewrite every line of the file.
    """

    def __init__(self, data_key: bytes) -> None:
        if len(data_key) != 32:
            raise ValueError("the data key must be 32 bytes")
        self._aes = AESGCM(data_key)
        self._stash: dict[tuple[str, bytes, str], str] = {}

    def encrypt(self, value: Any, aad: str, *, kind: str | None = None) -> str:
        plaintext = to_bytes(value)
        if not plaintext and isinstance(value, str | bytes):
            return ""
        kind = kind or type_name(value)
        stashed = self._stash.get((aad, plaintext, kind))
        if stashed is not None:
            return stashed
        iv = os.urandom(IV_SIZE)
        sealed = self._aes.encrypt(iv, plaintext, aad.encode("utf-8", "surrogateescape"))
        data, tag = sealed[:-16], sealed[-16:]
        return f"ENC[AES256_GCM,data:{_b64(data)},iv:{_b64(iv)},tag:{_b64(tag)},type:{kind}]"

    def decrypt(self, text: str, aad: str, *, where: str) -> Any:
        """Decrypt one value; ``where`` names the key path for error messages."""
        if text == "":
            return ""
        try:
            enc = parse_enc(text)
        except ValueError as exc:
            raise ValueDecryptError(f"{where}: {exc}") from None
        if enc.type not in KNOWN_TYPES:
            raise ValueDecryptError(f"{where}: unknown value type {enc.type!r} in ENC[...]")
        if not enc.iv:
            raise ValueDecryptError(f"{where}: malformed ENC[...] value (empty iv)")
        try:
            plaintext = _open(self._aes, enc, aad)
        except InvalidTag:
            raise ValueDecryptError(
                f"{where}: value failed authentication (altered, moved to another key, "
                "or encrypted with another data key)"
            ) from None
        value = _typed(plaintext, enc.type, where)
        self._stash[(aad, to_bytes(value), enc.type if enc.type != "bytes" else "str")] = text
        return value


def _open(aes: AESGCM, enc: EncValue, aad: str) -> bytes:
    # sops stores the GCM tag apart from the ciphertext; AESGCM wants them joined.
    return aes.decrypt(enc.iv, enc.data + enc.tag, aad.encode("utf-8", "surrogateescape"))


def _typed(plaintext: bytes, kind: str, where: str) -> Any:
    text = decode_str(plaintext)
    try:
        if kind in ("str", "bytes"):
            return text
        if kind == "int":
            return parse_go_int(text)
        if kind == "float":
            return parse_go_float(text)
        if kind == "bool":
            return parse_go_bool(text)
        if kind == "time":
            parse_rfc3339(text)
            return GoTime(text)
        return Comment(text)
    except ValueError:
        # Not the parser's message: it quotes the text, and the text is the decrypted secret.
        raise ValueDecryptError(
            f"{where}: the decrypted value is not a valid {kind} (its type:{kind} tag, which "
            "GCM does not authenticate, may have been altered)"
        ) from None
