"""``manifest.json``: what a backup holds and the checksums that prove a copy is intact.

Written last (the folder is renamed into place after it), so a folder without a manifest is an
unfinished backup. It holds nothing secret: versions, sizes, hashes of ciphertexts, recipients.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec

from keel.backup.errors import VerifyError

MANIFEST_NAME = "manifest.json"
FORMAT = "keel-backup/1"
PartKind = Literal["postgres", "redis"]


class Part(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: PartKind
    file: str
    # What the plaintext is: "pg_dump -Fc" or "redis rdb".
    format: str
    size: int  # bytes of the encrypted file
    sha256: str  # of the encrypted file
    plaintext_size: int


class Manifest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    format: str
    created_at: str  # RFC 3339, UTC
    env: str
    source: str  # "local postgresql keel@host:5432/keel" or "compose project keel-prod"
    keel_version: str
    alembic_head: str | None
    postgres_version: str
    redis_version: str | None
    recipients: list[str]
    parts: list[Part]
    duration_s: float

    def part(self, kind: PartKind) -> Part | None:
        return next((p for p in self.parts if p.kind == kind), None)


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    path = folder / MANIFEST_NAME
    path.write_bytes(msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n")
    path.chmod(0o600)
    return path


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise VerifyError(
            f"{path}: no manifest; not a Keel backup folder, or an unfinished backup"
        ) from None
    except OSError as exc:
        raise VerifyError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        manifest = msgspec.json.decode(data, type=Manifest)
    except msgspec.ValidationError as exc:
        raise VerifyError(f"{path}: not a valid manifest: {exc}") from None
    except msgspec.DecodeError:
        raise VerifyError(f"{path}: not valid JSON (damaged or truncated)") from None
    if manifest.format != FORMAT:
        raise VerifyError(f"{path}: format {manifest.format!r}; this Keel reads {FORMAT!r}")
    if manifest.part("postgres") is None:
        raise VerifyError(f"{path}: lists no postgres part")
    for part in manifest.parts:
        if "/" in part.file or part.file.startswith("."):
            raise VerifyError(f"{path}: part file {part.file!r} is not a plain file name")
    return manifest
