"""SOPS-format secrets with age: read and write files the real ``sops`` reads and writes.

Pure library (no application imports): the config loader's adapter is
:mod:`keel.config.secrets_layer`, the CLI :mod:`keel.commands.secrets_cmd`. The format is
described in ``docs/secrets.md``.
"""

from keel.secrets.age_keys import Identities, find_identities
from keel.secrets.document import (
    Decrypted,
    KeyPlan,
    decrypt_bytes,
    decrypt_file,
    encrypt_bytes,
    encrypt_tree,
    reencrypt,
)
from keel.secrets.errors import (
    ConfigRuleError,
    FormatError,
    MacError,
    MetadataError,
    NoIdentityError,
    NoMatchingKeyError,
    SopsError,
    UnsupportedRecipientError,
    ValueDecryptError,
)
from keel.secrets.rules import Rule

__all__ = [
    "ConfigRuleError",
    "Decrypted",
    "FormatError",
    "Identities",
    "KeyPlan",
    "MacError",
    "MetadataError",
    "NoIdentityError",
    "NoMatchingKeyError",
    "Rule",
    "SopsError",
    "UnsupportedRecipientError",
    "ValueDecryptError",
    "decrypt_bytes",
    "decrypt_file",
    "encrypt_bytes",
    "encrypt_tree",
    "find_identities",
    "reencrypt",
]
