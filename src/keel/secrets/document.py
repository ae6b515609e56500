"""Decrypt, encrypt and re-encrypt whole SOPS documents (any store)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.secrets import age_keys, shamir
from keel.secrets.age_keys import Identities
from keel.secrets.cipher import ValueCipher
from keel.secrets.errors import (
    FormatError,
    MacError,
    MetadataError,
    NoIdentityError,
    NoMatchingKeyError,
    SopsError,
    UnsupportedRecipientError,
    ValueDecryptError,
)
from keel.secrets.metadata import AgeKey, KeyGroup, Metadata, parse_metadata
from keel.secrets.model import Branch, Comment, mac_aad, to_plain
from keel.secrets.rules import Rule
from keel.secrets.stores import (
    Format,
    emit_encrypted,
    format_for,
    load_encrypted,
    load_plain,
    require_metadata,
)
from keel.secrets.tree import decrypt_branches, encrypt_branches


@dataclass(slots=True)
class Decrypted:
    """A decrypted document, with what is needed to write it back (same data key, same IVs)."""

    fmt: Format
    # Plaintext and key material: kept out of repr (a traceback or a debug log prints it).
    branches: list[Branch] = field(repr=False)
    metadata: Metadata
    data_key: bytes = field(repr=False)
    cipher: ValueCipher = field(repr=False)
    label: str = ""

    def tree(self) -> dict[str, Any]:
        """The first document as plain data (comments dropped): what the app config reads."""
        plain = to_plain(self.branches[0]) if self.branches else {}
        assert isinstance(plain, dict)
        return plain


@dataclass(slots=True)
class KeyPlan:
    """Who can open a file: age recipients per key group (Shamir when more than one group)."""

    groups: list[list[str]]
    threshold: int = 0
    keep_other: list[dict[str, list[Any]]] = field(default_factory=list)

    @classmethod
    def single(cls, recipients: Sequence[str]) -> KeyPlan:
        return cls([list(recipients)])


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- data key ---------------------------------------------------------------------------


def recover_data_key(metadata: Metadata, identities: Identities) -> bytes:
    """Unwrap the data key (or enough Shamir shares) with any of ``identities``."""
    age_entries = [key for group in metadata.key_groups for key in group.age]
    if not age_entries:
        others = ", ".join(metadata.recipients) or "none"
        raise UnsupportedRecipientError(
            f"encrypted only for master keys Keel cannot use ({others}); Keel reads age "
            "recipients: re-encrypt with `sops updatekeys` after adding an age key to .sops.yaml"
        )
    shares: list[bytes] = []
    if identities:
        for group in metadata.key_groups:
            for key in group.age:
                secret = age_keys.unwrap(key.enc, identities)
                if secret is not None:
                    shares.append(secret)
                    break
    if len(metadata.key_groups) == 1 and shares:
        if len(shares[0]) != 32:
            raise MetadataError(f"the age-wrapped data key has {len(shares[0])} bytes, not 32")
        return shares[0]
    threshold = metadata.shamir_threshold or len(metadata.key_groups)
    if len(metadata.key_groups) > 1 and len(shares) >= threshold:
        try:
            return shamir.combine(shares)
        except ValueError as exc:
            raise MetadataError(f"cannot combine the key-group shares: {exc}") from None
    recipients = [key.recipient for key in age_entries]
    if all(r.startswith("age1pq1") for r in recipients):
        raise UnsupportedRecipientError(
            f"unsupported recipient type: the file is encrypted only for post-quantum age "
            f"recipients ({', '.join(r[:20] + '…' for r in recipients)}); Keel (pyrage) reads "
            "X25519 age1… and ssh-ed25519 recipients"
        )
    listed = ", ".join(_short(r) for r in metadata.recipients)
    if not identities:
        raise NoIdentityError(
            f"no age identity found to decrypt it (looked at: {'; '.join(identities.looked)}); "
            f"the file's recipients: {listed}"
        )
    if len(metadata.key_groups) > 1:
        raise NoMatchingKeyError(
            f"the identities found open {len(shares)} of the {threshold} key groups needed "
            f"(recipients: {listed}; keys from {', '.join(identities.sources)})"
        )
    raise NoMatchingKeyError(
        f"none of the {len(identities.keys)} age identities found "
        f"(from {', '.join(identities.sources)}) matches a recipient of the file ({listed}); "
        "ask someone who can open it to add your public key and run `keel secrets updatekeys`"
    )


def _short(recipient: str) -> str:
    return recipient if len(recipient) <= 24 else recipient[:16] + "…" + recipient[-6:]


def wrap_for(plan: KeyPlan, data_key: bytes) -> list[KeyGroup]:
    groups = [group for group in plan.groups if group]
    if not groups:
        raise SopsError("no age recipients to encrypt for")
    if len(groups) == 1:
        secrets_ = [data_key]
    else:
        threshold = plan.threshold or len(groups)
        secrets_ = shamir.split(data_key, len(groups), threshold)
    out: list[KeyGroup] = []
    for index, (group, secret) in enumerate(zip(groups, secrets_, strict=True)):
        other = plan.keep_other[index] if index < len(plan.keep_other) else {}
        out.append(
            KeyGroup(age=[AgeKey(r, age_keys.wrap(secret, r)) for r in group], other=dict(other))
        )
    return out


# --- decrypt ----------------------------------------------------------------------------


def decrypt_bytes(
    data: bytes,
    fmt: Format,
    *,
    identities: Identities | None = None,
    data_key: bytes | None = None,
    label: str = "",
    ignore_mac: bool = False,
) -> Decrypted:
    """Decrypt a document held in memory; errors name ``label``."""
    try:
        parsed = load_encrypted(data, fmt)
        metadata = parse_metadata(require_metadata(parsed))
        if data_key is None:
            data_key = recover_data_key(
                metadata, identities if identities is not None else Identities()
            )
        cipher = ValueCipher(data_key)
        plain, digest = decrypt_branches(
            parsed.branches, cipher, metadata.rule, mac_only_encrypted=metadata.mac_only_encrypted
        )
        if not ignore_mac:
            _check_mac(metadata, cipher, digest)
    except SopsError as exc:
        raise (exc.at(label) if label else exc) from None
    return Decrypted(fmt, plain, metadata, data_key, cipher, label)


def _check_mac(metadata: Metadata, cipher: ValueCipher, digest: str) -> None:
    if not metadata.mac:
        raise MacError("refused: the file has no MAC (sops metadata 'mac' is missing or empty)")
    try:
        aad = mac_aad(metadata.lastmodified)
    except ValueError:
        raise MacError(
            f"refused: sops 'lastmodified' {metadata.lastmodified!r} is not an RFC 3339 time"
        ) from None
    try:
        stored = cipher.decrypt(metadata.mac, aad, where="sops.mac")
    except ValueDecryptError:
        raise MacError(
            "MAC mismatch: the file was altered after it was encrypted (a value, the MAC or "
            "lastmodified changed); refusing it"
        ) from None
    if str(stored).upper() != digest:
        raise MacError(
            "MAC mismatch: the values do not match the file's MAC (a value was changed, "
            "swapped or removed); refusing it"
        )


def decrypt_file(
    path: Path,
    *,
    identities: Identities | None = None,
    environ: Mapping[str, str] | None = None,
    fmt: str | None = None,
    data_key: bytes | None = None,
    ignore_mac: bool = False,
) -> Decrypted:
    """Read and decrypt ``path``; identities default to the sops search (``environ``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SopsError(f"cannot read: {exc.strerror or exc}", path=path) from None
    if identities is None and data_key is None:
        identities = age_keys.find_identities(os.environ if environ is None else environ)
    return decrypt_bytes(
        data,
        format_for(path, fmt),
        identities=identities,
        data_key=data_key,
        label=str(path),
        ignore_mac=ignore_mac,
    )


# --- encrypt ----------------------------------------------------------------------------


def _refuse_sops_keys(branches: list[Branch], fmt: Format) -> None:
    for branch in branches:
        for key, _ in branch:
            if isinstance(key, Comment):
                continue
            if key == "sops" or (fmt == "dotenv" and key.startswith("sops_")):
                raise FormatError(
                    f"the plaintext already has a top-level {key!r} key (already encrypted?)"
                )


def encrypt_tree(
    branches: list[Branch],
    fmt: Format,
    *,
    plan: KeyPlan | None = None,
    rule: Rule | None = None,
    mac_only_encrypted: bool = False,
    data_key: bytes | None = None,
    key_groups: list[KeyGroup] | None = None,
    cipher: ValueCipher | None = None,
    threshold: int = 0,
) -> bytes:
    """Encrypt plaintext branches; either ``plan`` (wrap a fresh key) or ``key_groups`` +
    ``data_key`` (re-use the wrapped key of an existing file)."""
    _refuse_sops_keys(branches, fmt)
    rule = rule or Rule()
    if key_groups is None:
        if plan is None:
            raise SopsError("no recipients given")
        data_key = os.urandom(32)
        key_groups = wrap_for(plan, data_key)
        threshold = plan.threshold
        cipher = None
    if data_key is None:
        raise SopsError("a data key is required with existing key groups")
    cipher = cipher or ValueCipher(data_key)
    try:
        encrypted, digest = encrypt_branches(
            branches, cipher, rule, mac_only_encrypted=mac_only_encrypted
        )
    except ValueError as exc:
        raise SopsError(str(exc)) from None
    lastmodified = now_rfc3339()
    metadata = Metadata(
        key_groups=key_groups,
        lastmodified=lastmodified,
        mac=cipher.encrypt(digest, lastmodified, kind="str"),
        rule=rule,
        mac_only_encrypted=mac_only_encrypted,
        shamir_threshold=threshold if len(key_groups) > 1 else 0,
    )
    return emit_encrypted(encrypted, metadata.to_dict(), fmt)


def encrypt_bytes(
    data: bytes,
    fmt: Format,
    *,
    plan: KeyPlan,
    rule: Rule | None = None,
    mac_only_encrypted: bool = False,
    label: str = "",
) -> bytes:
    try:
        branches = load_plain(data, fmt)
        return encrypt_tree(
            branches, fmt, plan=plan, rule=rule, mac_only_encrypted=mac_only_encrypted
        )
    except SopsError as exc:
        raise (exc.at(label) if label else exc) from None


def reencrypt(
    doc: Decrypted,
    branches: list[Branch] | None = None,
    *,
    rotate: bool = False,
    plan: KeyPlan | None = None,
) -> bytes:
    """Write ``doc`` (or new ``branches`` for it) back.

    Same data key and master keys by default (unchanged values keep their ciphertext);
    ``rotate`` makes a new data key; ``plan`` re-wraps for other recipients.
    """
    branches = doc.branches if branches is None else branches
    md = doc.metadata
    if rotate or plan is not None:
        if plan is None:
            _refuse_non_age(md, "rotate")
            plan = KeyPlan(
                [[k.recipient for k in group.age] for group in md.key_groups],
                threshold=md.shamir_threshold,
            )
        data_key = os.urandom(32) if rotate else doc.data_key
        groups = wrap_for(plan, data_key)
        cipher = ValueCipher(data_key) if rotate else doc.cipher
        threshold = plan.threshold or len(groups)
    else:
        data_key, groups, cipher, threshold = (
            doc.data_key,
            md.key_groups,
            doc.cipher,
            md.shamir_threshold,
        )
    return encrypt_tree(
        branches,
        doc.fmt,
        rule=md.rule,
        mac_only_encrypted=md.mac_only_encrypted,
        data_key=data_key,
        key_groups=groups,
        cipher=cipher,
        threshold=threshold,
    )


def _refuse_non_age(md: Metadata, action: str) -> None:
    for group in md.key_groups:
        if group.other:
            kinds = ", ".join(sorted(group.other))
            raise UnsupportedRecipientError(
                f"cannot {action}: the file also has {kinds} master keys, which Keel cannot "
                f"re-wrap; use `sops {action}` for this file"
            )
