"""The ``sops`` metadata block: master keys (key groups), MAC, ``lastmodified``, rule, version."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from keel.secrets.errors import MetadataError
from keel.secrets.rules import RULE_KEYS, Rule, rule_from_options

# The version Keel writes: real sops compares it as semver, so it must be X.Y.Z.
WRITER_VERSION = "3.13.2"
# Master-key kinds other than age, kept untouched so re-encrypting with the same data key
# does not lose a teammate's PGP or cloud KMS access.
OTHER_KEY_TYPES = ("kms", "gcp_kms", "azure_kv", "hc_vault", "hckms", "pgp")


@dataclass(slots=True)
class AgeKey:
    recipient: str
    enc: str


@dataclass(slots=True)
class KeyGroup:
    age: list[AgeKey] = field(default_factory=list)
    other: dict[str, list[Any]] = field(default_factory=dict)

    def describe(self) -> list[str]:
        names = [key.recipient for key in self.age]
        for kind, entries in self.other.items():
            for entry in entries:
                ident = entry.get("fp") or entry.get("arn") or entry.get("resource_id") or ""
                names.append(f"{kind}:{ident}" if ident else kind)
        return names


@dataclass(slots=True)
class Metadata:
    key_groups: list[KeyGroup]
    lastmodified: str = ""
    mac: str = ""
    rule: Rule = field(default_factory=Rule)
    mac_only_encrypted: bool = False
    version: str = WRITER_VERSION
    shamir_threshold: int = 0
    # Written as ``key_groups`` (Shamir) rather than flat ``age:``/``pgp:`` lists.
    grouped: bool = False

    @property
    def recipients(self) -> list[str]:
        return [name for group in self.key_groups for name in group.describe()]

    def to_dict(self) -> dict[str, Any]:
        """The block as sops writes it (3.11 key order, empty lists omitted)."""
        out: dict[str, Any] = {}
        if self.grouped or len(self.key_groups) > 1:
            out["key_groups"] = [_group_dict(group) for group in self.key_groups]
            out["shamir_threshold"] = self.shamir_threshold or len(self.key_groups)
        else:
            group = self.key_groups[0] if self.key_groups else KeyGroup()
            for kind in ("kms", "gcp_kms", "azure_kv", "hc_vault", "hckms"):
                if group.other.get(kind):
                    out[kind] = group.other[kind]
            if group.age:
                out["age"] = [{"recipient": k.recipient, "enc": k.enc} for k in group.age]
        out["lastmodified"] = self.lastmodified
        out["mac"] = self.mac
        flat = not (self.grouped or len(self.key_groups) > 1)
        if flat and self.key_groups and self.key_groups[0].other.get("pgp"):
            out["pgp"] = self.key_groups[0].other["pgp"]
        out[self.rule.kind] = self.rule.value
        if self.mac_only_encrypted:
            out["mac_only_encrypted"] = True
        out["version"] = self.version
        return out


def _group_dict(group: KeyGroup) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in OTHER_KEY_TYPES:
        if group.other.get(kind):
            out[kind] = group.other[kind]
    if group.age:
        out["age"] = [{"recipient": k.recipient, "enc": k.enc} for k in group.age]
    return out


def _group_from(raw: Any) -> KeyGroup:
    if not isinstance(raw, dict):
        raise MetadataError("sops metadata: a key group is not a map")
    age: list[AgeKey] = []
    for entry in raw.get("age") or []:
        if not isinstance(entry, dict) or "enc" not in entry:
            raise MetadataError("sops metadata: an age entry has no 'enc'")
        age.append(AgeKey(str(entry.get("recipient", "")), str(entry["enc"])))
    other = {
        kind: list(raw[kind])
        for kind in OTHER_KEY_TYPES
        if isinstance(raw.get(kind), list) and raw[kind]
    }
    return KeyGroup(age=age, other=other)


def _weak_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "t", "true"}


def parse_metadata(raw: Any) -> Metadata:
    """Build :class:`Metadata` from the decoded ``sops`` map (weakly typed, like mapstructure)."""
    if not isinstance(raw, dict):
        raise MetadataError("the 'sops' metadata entry is not a map")
    flat = _group_from(raw)
    groups_raw = raw.get("key_groups") or []
    if flat.age or flat.other:
        groups, grouped = [flat], False
    elif groups_raw:
        if not isinstance(groups_raw, list):
            raise MetadataError("sops metadata: key_groups is not a list")
        groups, grouped = [_group_from(group) for group in groups_raw], True
    else:
        raise MetadataError("sops metadata lists no master keys (no age, pgp or kms entries)")
    try:
        rule = rule_from_options({key: raw.get(key) for key in RULE_KEYS})
    except ValueError as exc:
        raise MetadataError(f"sops metadata: {exc}") from None
    try:
        threshold = int(raw.get("shamir_threshold") or 0)
    except (TypeError, ValueError):
        raise MetadataError("sops metadata: shamir_threshold is not an integer") from None
    return Metadata(
        key_groups=groups,
        lastmodified=str(raw.get("lastmodified") or ""),
        mac=str(raw.get("mac") or ""),
        rule=rule,
        mac_only_encrypted=_weak_bool(raw.get("mac_only_encrypted", False)),
        version=str(raw.get("version") or ""),
        shamir_threshold=threshold,
        grouped=grouped,
    )


# --- flattening for dotenv (``sops_`` prefix) and INI (``[sops]`` section) -----------------


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """``{"age": [{"enc": x}]}`` → ``{"age__list_0__map_enc": x}`` (MetadataFlattenFull)."""
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{prefix}__map_{key}" if prefix else str(key)
            out.update(flatten(item, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}__list_{index}"))
    elif isinstance(value, bool):
        out[prefix] = "true" if value else "false"
    else:
        out[prefix] = str(value)
    return out


_PART = re.compile(r"__(list|map)_")


def unflatten(flat: dict[str, str]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for name, value in flat.items():
        pieces = _PART.split(name)
        # pieces: [top, kind, key, kind, key, ...]
        steps: list[tuple[str, str]] = [("map", pieces[0])]
        steps += [(pieces[i], pieces[i + 1]) for i in range(1, len(pieces) - 1, 2)]
        container: Any = root
        for index, (kind, key) in enumerate(steps):
            last = index == len(steps) - 1
            new: Any = value if last else {}
            if kind == "list":
                # lists are built as index-keyed dicts, converted below
                container = container.setdefault(f"\0list\0{key}", new)
            else:
                container = container.setdefault(key, new)
    result: dict[str, Any] = _lists(root)
    return result


def _lists(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if value and all(str(k).startswith("\0list\0") for k in value):
        ordered = sorted(value.items(), key=lambda kv: int(kv[0].split("\0")[2]))
        return [_lists(v) for _, v in ordered]
    return {k: _lists(v) for k, v in value.items()}
