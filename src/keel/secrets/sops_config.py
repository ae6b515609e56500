"""``.sops.yaml``: creation rules (``path_regex`` → age recipients, selection rule), as sops."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.secrets.document import KeyPlan
from keel.secrets.errors import ConfigRuleError, SopsError
from keel.secrets.model import Branch, to_plain
from keel.secrets.rules import RULE_KEYS, Rule, go_regex, rule_from_options
from keel.secrets.stores import yaml_store

CONFIG_NAME = ".sops.yaml"


@dataclass(frozen=True, slots=True)
class CreationRule:
    path_regex: str
    plan: KeyPlan
    rule: Rule
    mac_only_encrypted: bool
    ignored: tuple[str, ...] = ()


def find_config(start: Path) -> Path | None:
    """The nearest ``.sops.yaml`` in ``start`` or a parent directory."""
    here = start.resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def _load(config: Path) -> Branch:
    try:
        branches = yaml_store.load(config.read_bytes())
    except OSError as exc:
        raise ConfigRuleError(f"cannot read: {exc.strerror or exc}", path=config) from None
    except SopsError as exc:
        raise exc.at(config) from None
    return branches[0] if branches else Branch()


def _recipients(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def relative_name(path: Path, config: Path) -> str:
    """The path as sops matches it: relative to the config's folder when inside it."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(config.parent.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def rule_for(path: Path, config: Path | None = None) -> CreationRule:
    """The first creation rule whose ``path_regex`` matches ``path`` (sops' choice)."""
    config = config or find_config(path.parent)
    if config is None:
        raise ConfigRuleError(
            f"no {CONFIG_NAME} found in {path.parent.resolve()} or above; pass --age "
            "recipients or run `keel secrets init ENV`",
            path=path,
        )
    raw = to_plain(_load(config))
    rules = raw.get("creation_rules") if isinstance(raw, dict) else None
    if not isinstance(rules, list) or not rules:
        raise ConfigRuleError("has no creation_rules", path=config)
    name = relative_name(path, config)
    for index, entry in enumerate(rules):
        if not isinstance(entry, dict):
            raise ConfigRuleError(f"creation_rules[{index}] is not a map", path=config)
        pattern = entry.get("path_regex")
        try:
            if pattern and not go_regex(str(pattern)).search(name):
                continue
        except re.error as exc:
            raise ConfigRuleError(
                f"creation_rules[{index}].path_regex is not a valid regex: {exc}", path=config
            ) from None
        return _creation_rule(entry, index, config)
    raise ConfigRuleError(
        f"no creation rule matches {name!r} (add one with path_regex for it, e.g. "
        "`keel secrets init ENV`)",
        path=config,
    )


def _creation_rule(entry: dict[str, Any], index: int, config: Path) -> CreationRule:
    ignored = tuple(
        kind
        for kind in ("pgp", "kms", "gcp_kms", "azure_keyvault", "hc_vault_transit_uri")
        if entry.get(kind)
    )
    groups_raw = entry.get("key_groups")
    if groups_raw:
        groups = [_recipients(group.get("age")) for group in groups_raw if isinstance(group, dict)]
        threshold = int(entry.get("shamir_threshold") or 0)
    else:
        groups = [_recipients(entry.get("age"))]
        threshold = 0
    if not any(groups):
        raise ConfigRuleError(
            f"creation_rules[{index}] ({entry.get('path_regex', 'catch-all')}) lists no age "
            "recipients; Keel encrypts for age recipients only",
            path=config,
        )
    try:
        rule = rule_from_options({key: entry.get(key) for key in RULE_KEYS})
    except ValueError as exc:
        raise ConfigRuleError(f"creation_rules[{index}]: {exc}", path=config) from None
    return CreationRule(
        path_regex=str(entry.get("path_regex") or ""),
        plan=KeyPlan(groups, threshold=threshold),
        rule=rule,
        mac_only_encrypted=bool(entry.get("mac_only_encrypted", False)),
        ignored=ignored,
    )


def env_path_regex(env: str) -> str:
    return rf"(^|/)secrets/{re.escape(env)}\.yaml$"


def set_env_rule(config: Path, env: str, recipients: list[str]) -> None:
    """Add (or replace) the rule for ``secrets/<env>.yaml``, keeping the rest and comments."""
    root = _load(config) if config.is_file() else Branch()
    rules = root.get("creation_rules")
    if not isinstance(rules, list):
        rules = []
        root.set("creation_rules", rules)
    pattern = env_path_regex(env)
    new = Branch([("path_regex", pattern), ("age", ",".join(recipients))])
    for entry in rules:
        if isinstance(entry, Branch) and entry.get("path_regex") == pattern:
            entry.set("age", ",".join(recipients))
            break
    else:
        # before any catch-all rule, which would otherwise win
        position = next(
            (
                i
                for i, entry in enumerate(rules)
                if isinstance(entry, Branch) and not entry.get("path_regex")
            ),
            len(rules),
        )
        rules.insert(position, new)
    config.write_bytes(yaml_store.emit([root], indent=2))


def recipients_in(config: Path, env: str) -> list[str]:
    """The age recipients of the env's rule (empty if there is none)."""
    rules = to_plain(_load(config)).get("creation_rules") if config.is_file() else None
    for entry in rules or []:
        if isinstance(entry, dict) and entry.get("path_regex") == env_path_regex(env):
            return _recipients(entry.get("age"))
    return []


__all__ = [
    "CONFIG_NAME",
    "CreationRule",
    "find_config",
    "recipients_in",
    "rule_for",
    "set_env_rule",
]
