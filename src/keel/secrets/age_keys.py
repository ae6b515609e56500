"""age identities and recipients: where sops looks for keys, and wrapping the data key.

Crypto is pyrage's (the Rust ``age`` crate); this module only finds keys and explains failures.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyrage
from pyrage import ssh, x25519

from keel.secrets.errors import NoIdentityError, SopsError

SECRET_KEY_PREFIX = "AGE-SECRET-KEY-1"  # noqa: S105 - a format prefix
PQ_SECRET_KEY_PREFIX = "AGE-SECRET-KEY-PQ-1"  # noqa: S105
PLUGIN_PREFIX = "AGE-PLUGIN-"


@dataclass(slots=True)
class Identities:
    """Identities found, where each came from, and what was looked at (for error messages)."""

    keys: list[Any] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    looked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.keys)

    def add_text(self, text: str, source: str) -> int:
        """Parse a key file's content (one identity per line, ``#`` comments)."""
        stripped = text.lstrip()
        if stripped.startswith("-----BEGIN OPENSSH PRIVATE KEY-----"):
            return self.add_ssh(text.encode(), source)
        count = 0
        for raw_line in text.splitlines():
            line = raw_line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith(PQ_SECRET_KEY_PREFIX):
                self.skipped.append(f"post-quantum identity in {source} (not supported)")
                continue
            if line.startswith(PLUGIN_PREFIX):
                self.skipped.append(f"age plugin identity in {source} (not supported)")
                continue
            try:
                self.keys.append(x25519.Identity.from_str(line))
            except Exception:  # noqa: BLE001 - pyrage raises its own types; the line is not a key
                raise SopsError(
                    f"{source}: a line is not an age identity (expected {SECRET_KEY_PREFIX}…)"
                ) from None
            count += 1
        if count:
            self.sources.append(source)
        return count

    def add_ssh(self, data: bytes, source: str) -> int:
        try:
            self.keys.append(ssh.Identity.from_buffer(data))
        except Exception:  # noqa: BLE001
            self.skipped.append(f"{source} (unreadable or passphrase-protected SSH key)")
            return 0
        self.sources.append(source)
        return 1

    def add_file(self, path: Path, label: str) -> int:
        self.looked.append(f"{label} ({path})")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise SopsError(f"{label}: cannot read {path}: {exc.strerror or exc}") from None
        return self.add_text(data.decode("utf-8", "replace"), f"{label} ({path})")


def default_key_file(environ: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/sops/age/keys.txt`` (``~/.config/sops/age/keys.txt``)."""
    base = environ.get("XDG_CONFIG_HOME")
    if base:
        return Path(base) / "sops" / "age" / "keys.txt"
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".config" / "sops" / "age" / "keys.txt"


def find_identities(
    environ: Mapping[str, str],
    *,
    explicit: Sequence[Path] = (),
    fallback: Sequence[tuple[Path, str]] = (),
    include_default_ssh: bool = True,
) -> Identities:
    """Collect identities the way sops does, plus ``explicit`` files and ``fallback`` ones.

    Order: ``--identity`` files, ``SOPS_AGE_KEY``, ``SOPS_AGE_KEY_FILE``, ``SOPS_AGE_KEY_CMD``,
    the default key file, SSH keys (``SOPS_AGE_SSH_PRIVATE_KEY_FILE``, ``~/.ssh/id_ed25519``),
    then ``fallback`` (e.g. the committed key of the ``local``/``test`` environment). All of
    them are tried on the file; order only matters for speed.
    """
    found = Identities()
    for path in explicit:
        found.add_file(path, "--identity")
    inline = environ.get("SOPS_AGE_KEY")
    found.looked.append("SOPS_AGE_KEY" + ("" if inline else " (unset)"))
    if inline:
        found.add_text("\n".join(inline.split()), "SOPS_AGE_KEY")
    key_file = environ.get("SOPS_AGE_KEY_FILE")
    if key_file:
        found.add_file(Path(key_file).expanduser(), "SOPS_AGE_KEY_FILE")
        if not Path(key_file).expanduser().exists():
            raise NoIdentityError(
                f"SOPS_AGE_KEY_FILE={key_file} does not exist; fix the path or unset it"
            )
    else:
        found.looked.append("SOPS_AGE_KEY_FILE (unset)")
    command = environ.get("SOPS_AGE_KEY_CMD")
    if command:
        found.looked.append("SOPS_AGE_KEY_CMD")
        found.add_text(_run_key_command(command), "SOPS_AGE_KEY_CMD")
    found.add_file(default_key_file(environ), "default key file")
    ssh_file = environ.get("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
    if ssh_file:
        found.looked.append(f"SOPS_AGE_SSH_PRIVATE_KEY_FILE ({ssh_file})")
        try:
            found.add_ssh(Path(ssh_file).expanduser().read_bytes(), "SOPS_AGE_SSH_PRIVATE_KEY_FILE")
        except OSError as exc:
            raise SopsError(
                f"SOPS_AGE_SSH_PRIVATE_KEY_FILE={ssh_file}: {exc.strerror or exc}"
            ) from None
    elif include_default_ssh:
        home = environ.get("HOME")
        if home:
            candidate = Path(home) / ".ssh" / "id_ed25519"
            if candidate.is_file():
                found.looked.append(f"~/.ssh/id_ed25519 ({candidate})")
                found.add_ssh(candidate.read_bytes(), f"~/.ssh/id_ed25519 ({candidate})")
    for path, label in fallback:
        found.add_file(path, label)
    return found


def _run_key_command(command: str) -> str:
    try:
        result = subprocess.run(  # noqa: S603 - the user's own configured command, as sops runs it
            shlex.split(command), capture_output=True, check=True, timeout=30, text=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise SopsError(f"SOPS_AGE_KEY_CMD failed: {exc}") from None
    return result.stdout


def unwrap(enc: str, identities: Identities) -> bytes | None:
    """The data key (or Shamir share) inside one armored age file, or ``None``."""
    try:
        data: bytes = pyrage.decrypt(enc.encode("ascii", "replace"), identities.keys)
    except Exception:  # noqa: BLE001 - pyrage.DecryptError and friends: not for these keys
        return None
    return data


def parse_recipient(text: str) -> Any:
    text = text.strip()
    if text.startswith("age1pq1"):
        raise SopsError(
            f"unsupported recipient type {text[:16]}… (post-quantum hybrid); Keel reads "
            "X25519 (age1…) and ssh-ed25519 recipients"
        )
    try:
        if text.startswith(("ssh-ed25519 ", "ssh-rsa ")):
            return ssh.Recipient.from_str(text)
        return x25519.Recipient.from_str(text)
    except Exception:  # noqa: BLE001
        if text.upper().startswith("AGE-SECRET-KEY-") or "PRIVATE KEY" in text:
            # A private key pasted where the public recipient belongs: never echo it.
            raise SopsError(
                "a private key was given as a recipient; give its public age1… recipient "
                "(`age-keygen -y KEYFILE` prints it)"
            ) from None
        raise SopsError(f"{text!r} is not an age recipient (age1… or ssh-ed25519 …)") from None


def wrap(secret: bytes, recipient: str) -> str:
    """An armored age file holding ``secret`` for one recipient (as sops writes ``enc``)."""
    armored: bytes = pyrage.encrypt(secret, [parse_recipient(recipient)], armored=True)
    return armored.decode("ascii")


def generate() -> tuple[str, str]:
    """(identity ``AGE-SECRET-KEY-1…``, recipient ``age1…``)."""
    identity = x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def public_of(identity_text: str) -> str:
    return str(x25519.Identity.from_str(identity_text.strip()).to_public())
