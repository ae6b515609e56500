"""Prove a backup restorable before anything is touched.

Order (cheap first, no key needed for the first two): the manifest parses; every part it lists
is there with its size and SHA-256; then every part decrypts completely with the env's key
(age authenticates each chunk and the end: truncation or tampering fails here even with a
manifest forged to match), in this process, before any tool starts; then its plaintext is what
it claims (``pg_restore --list`` reads the
archive's table of contents; an RDB starts with ``REDIS``).
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyrage

from keel.backup.create import REDIS_MAGIC
from keel.backup.errors import VerifyError
from keel.backup.manifest import Manifest, Part, read_manifest
from keel.backup.stream import CountingWriter, decrypt_stream, file_digest
from keel.backup.tools import Tools, last_line
from keel.secrets.age_keys import Identities


@dataclass(frozen=True)
class VerifiedBackup:
    folder: Path
    manifest: Manifest
    # Table-of-contents entries pg_restore listed, and the tables among them.
    toc_entries: int
    tables: tuple[str, ...]


def verify_checksums(folder: Path) -> Manifest:
    """Manifest, presence, sizes and SHA-256 of every part: what an off-host copy must pass."""
    manifest = read_manifest(folder)
    for part in manifest.parts:
        path = folder / part.file
        if not path.is_file():
            raise VerifyError(
                f"{path}: missing ({part.kind} part listed in the manifest); copy the whole "
                "backup folder"
            )
        size, digest = file_digest(path)
        if size != part.size:
            raise VerifyError(
                f"{path}: {size} bytes, the manifest says {part.size} (truncated or "
                "incomplete copy)"
            )
        if digest != part.sha256:
            raise VerifyError(f"{path}: SHA-256 differs from the manifest (damaged or altered)")
    return manifest


class _TolerantPipe:
    """Feeds a child's stdin; once the child stops reading, the rest is still decrypted (so
    the age MAC of the whole file is checked) but dropped."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self.pipe: IO[bytes] | None = pipe

    def write(self, data: bytes) -> int:
        if self.pipe is not None:
            try:
                self.pipe.write(data)
            except BrokenPipeError:
                self.pipe = None
        return len(data)

    def close(self) -> None:
        if self.pipe is not None:
            with contextlib.suppress(BrokenPipeError):
                self.pipe.close()
            self.pipe = None


def _decrypt_into(path: Path, sink: Any, identities: Identities) -> None:
    if not identities:
        raise VerifyError(
            f"{path}: no age key found to decrypt it (looked at: {', '.join(identities.looked)});"
            " set SOPS_AGE_KEY_FILE to the environment's key"
        )
    try:
        decrypt_stream(path, sink, identities.keys)
    except pyrage.DecryptError as exc:
        if "no matching keys" in str(exc).lower():
            raise VerifyError(
                f"{path}: not encrypted to any key tried ({', '.join(identities.sources)}): "
                "wrong key; use the key of the environment the backup was made for"
            ) from None
        raise VerifyError(f"{path}: not a valid age file ({exc})") from None
    except OSError:
        raise VerifyError(
            f"{path}: age authentication failed (truncated, damaged or altered ciphertext)"
        ) from None


def _check_plaintext_size(path: Path, part: Part, seen: int) -> None:
    if seen != part.plaintext_size:
        raise VerifyError(
            f"{path}: decrypts to {seen} bytes, the manifest says {part.plaintext_size}"
        )


def check_postgres_part(
    tools: Tools, path: Path, part: Part, identities: Identities
) -> tuple[int, tuple[str, ...]]:
    """Decrypt fully through ``pg_restore --list``; (TOC entries, table names)."""
    call = tools.pg_offline(["pg_restore", "--list"])
    with tempfile.TemporaryFile() as listing, tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(  # noqa: S603 - argv built in keel.backup.tools
                call.argv, env=call.env, stdin=subprocess.PIPE, stdout=listing, stderr=errors
            )
        except FileNotFoundError as exc:
            raise VerifyError(f"{exc.filename}: not installed (needed to check the dump)") from None
        assert process.stdin is not None
        pipe = _TolerantPipe(process.stdin)
        counter = CountingWriter(pipe)
        try:
            _decrypt_into(path, counter, identities)
        finally:
            pipe.close()
            code = process.wait()
        listing.seek(0)
        lines = listing.read().decode("utf-8", "replace").splitlines()
        errors.seek(0)
        stderr = errors.read()
    _check_plaintext_size(path, part, counter.size)
    if code != 0:
        raise VerifyError(f"{path}: pg_restore cannot read the archive: {last_line(stderr)}")
    entries = [line for line in lines if line.strip() and not line.startswith(";")]
    tables = tuple(_table_names(entries))
    if not entries:
        raise VerifyError(f"{path}: the archive's table of contents is empty")
    return len(entries), tables


def _table_names(entries: list[str]) -> list[str]:
    # "215; 1259 16390 TABLE public jobs keel" (not "TABLE DATA public jobs keel")
    names = []
    for line in entries:
        words = line.split()
        if len(words) >= 6 and words[3] == "TABLE" and words[4] != "DATA":
            names.append(f"{words[4]}.{words[5]}")
    return names


class _MagicCheck(CountingWriter):
    def __init__(self) -> None:
        super().__init__()
        self.head = b""

    def write(self, data: bytes) -> int:
        if len(self.head) < 8:
            self.head += data[: 8 - len(self.head)]
        return super().write(data)


def check_redis_part(path: Path, part: Part, identities: Identities) -> None:
    sink = _MagicCheck()
    _decrypt_into(path, sink, identities)
    _check_plaintext_size(path, part, sink.size)
    if not sink.head.startswith(REDIS_MAGIC):
        raise VerifyError(f"{path}: decrypts to something that is not a Redis RDB file")


def verify_backup(
    folder: Path,
    identities: Identities,
    tools: Tools,
    log: Callable[[str], None] = lambda _line: None,
) -> VerifiedBackup:
    manifest = verify_checksums(folder)
    log(f"{folder}: manifest and SHA-256 of {len(manifest.parts)} part(s) match")
    # Key and age MAC of every part first, in this process: a wrong key or a damaged file is
    # refused before any tool (or throwaway container) starts.
    for part in manifest.parts:
        path = folder / part.file
        counter = CountingWriter()
        _decrypt_into(path, counter, identities)
        _check_plaintext_size(path, part, counter.size)
    log(f"{len(manifest.parts)} part(s) decrypt completely with {', '.join(identities.sources)}")
    entries, tables = 0, tuple[str, ...]()
    for part in manifest.parts:
        path = folder / part.file
        if part.kind == "postgres":
            entries, tables = check_postgres_part(tools, path, part, identities)
            log(f"{part.file}: pg_restore lists {entries} entries ({len(tables)} tables)")
        else:
            check_redis_part(path, part, identities)
            log(f"{part.file}: a Redis RDB")
    return VerifiedBackup(folder, manifest, entries, tables)
