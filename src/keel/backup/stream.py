"""age encryption on a stream, with the ciphertext's SHA-256 and size counted on the way.

pyrage (the Rust ``age`` crate) reads and writes Python file objects chunk by chunk, so a dump
piped from ``pg_dump`` goes straight into the ``.age`` file: the plaintext exists only in the
pipe. age authenticates every 64 KiB chunk and the end of the stream, so a truncated or
altered file fails to decrypt (at the latest at its last chunk).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Protocol

import pyrage

AGE_MAGIC = b"age-encryption.org/v1\n"
_CHUNK = 1 << 20


class Writable(Protocol):
    def write(self, data: bytes, /) -> int | None: ...


class CountingWriter:
    """Passes bytes on to ``sink`` (or drops them) while hashing and counting them."""

    def __init__(self, sink: Writable | None = None) -> None:
        self.sink = sink
        self.size = 0
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        if self.sink is not None:
            self.sink.write(data)
        return len(data)

    def flush(self) -> None:
        flush = getattr(self.sink, "flush", None)
        if flush is not None:
            flush()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class CountingReader:
    """Reads from ``source`` while counting (the plaintext size of a dump)."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.size = 0
        self.head = b""

    def read(self, n: int = -1) -> bytes:
        data = self.source.read(n)
        if len(self.head) < 16:
            self.head += data[: 16 - len(self.head)]
        self.size += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def encrypt_stream(source: IO[bytes], target: Path, recipients: Sequence[Any]) -> EncryptedPart:
    """Encrypt everything ``source`` yields into ``target`` (mode 0600)."""
    reader = CountingReader(source)
    with target.open("xb") as handle:
        target.chmod(0o600)
        writer = CountingWriter(handle)
        pyrage.encrypt_io(reader, writer, list(recipients))
        handle.flush()
    return EncryptedPart(
        size=writer.size, sha256=writer.sha256, plaintext_size=reader.size, head=reader.head
    )


class EncryptedPart:
    __slots__ = ("head", "plaintext_size", "sha256", "size")

    def __init__(self, *, size: int, sha256: str, plaintext_size: int, head: bytes) -> None:
        self.size = size
        self.sha256 = sha256
        self.plaintext_size = plaintext_size
        # The first plaintext bytes (the format's magic, e.g. PGDMP / REDIS), never more.
        self.head = head


def file_digest(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def decrypt_stream(source: Path, sink: Writable, identities: Sequence[Any]) -> None:
    """Decrypt ``source`` into ``sink``; raises pyrage.DecryptError / OSError when it fails."""
    with source.open("rb") as handle:
        pyrage.decrypt_io(handle, sink, list(identities))
