"""Errors of the SOPS library: one line each, naming the file (and key) they are about."""

from __future__ import annotations


class SopsError(Exception):
    """A SOPS file cannot be read, decrypted or written. ``str()`` is one actionable line."""

    def __init__(self, message: str, *, path: object | None = None) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = " ".join(self.message.split("\n"))
        return f"{self.path}: {text}" if self.path else text

    def at(self, path: object) -> SopsError:
        """The same error, attributed to ``path`` unless it already names a file."""
        if self.path is None:
            self.path = str(path)
            self.args = (str(self),)
        return self


class FormatError(SopsError):
    """The file is not valid YAML/JSON/dotenv/INI, or not a SOPS file."""


class MetadataError(SopsError):
    """The ``sops`` metadata block is missing or malformed."""


class MacError(SopsError):
    """The MAC is missing or does not match: the file was altered (or is not for this key)."""


class ValueDecryptError(SopsError):
    """One ``ENC[...]`` value is malformed, of an unknown type, or fails authentication."""


class NoIdentityError(SopsError):
    """No age identity could be found at all."""


class NoMatchingKeyError(SopsError):
    """Identities were found, but none of them unwraps the file's data key."""


class UnsupportedRecipientError(SopsError):
    """The file is encrypted only for master keys Keel does not read (PGP, KMS, PQ age…)."""


class ConfigRuleError(SopsError):
    """``.sops.yaml`` is missing, malformed, or has no creation rule for the path."""
