"""Read Keel's Compose files the way Compose does: YAML anchors, ``${VAR}`` interpolation and the
override merge of several ``-f`` files. Only what the stack renderer needs, nothing more.

Merge rules (Compose specification, "Merge and override"): mappings merge key by key; ``command``,
``entrypoint`` and ``healthcheck.test`` are replaced; ``ports``, ``tmpfs``, ``cap_*``,
``security_opt`` and other plain lists are unioned; ``volumes``, ``secrets`` and ``configs`` are
merged by their target; ``environment`` and ``labels`` merge as mappings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


class StackError(Exception):
    """A problem with the inputs of a stack command: one line naming the file, key or value."""


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)
_REPLACED = {"command", "entrypoint"}
_BY_TARGET = {"volumes", "secrets", "configs"}
_AS_MAPPING = {"environment", "labels"}


def interpolate(value: Any, environ: Mapping[str, str], where: str) -> Any:
    """Substitute ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``$$``."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            if match.group("escaped"):
                return "$"
            name = match.group("braced") or match.group("plain")
            op, arg = match.group("op"), match.group("arg") or ""
            current = environ.get(name)
            if op == ":-":
                return current if current else arg
            if op == "-":
                return current if current is not None else arg
            if op in (":?", "?") and (current is None or (op == ":?" and not current)):
                raise StackError(f"{where}: ${{{name}}} is required: {arg or 'not set'}")
            return current or ""

        return _VARIABLE.sub(substitute, value)
    if isinstance(value, Mapping):
        return {key: interpolate(item, environ, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environ, f"{where}[{i}]") for i, item in enumerate(value)]
    return value


def load_file(path: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    """One Compose file: YAML (anchors and ``<<`` merge keys resolved), then interpolated."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StackError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise StackError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise StackError(f"{path}: expected a mapping at the top level")
    # Extension fields (x-...) only hold anchors; they are not part of the merged model.
    document = {key: item for key, item in document.items() if not str(key).startswith("x-")}
    result: dict[str, Any] = interpolate(document, environ, path.name)
    return result


def _as_mapping(value: Any) -> dict[str, Any]:
    """``environment``/``labels`` in list form (``KEY=VALUE``) or mapping form, as a mapping."""
    if isinstance(value, Mapping):
        return dict(value)
    mapping: dict[str, Any] = {}
    for item in value or []:
        key, _, text = str(item).partition("=")
        mapping[key] = text
    return mapping


def _target(entry: Any, key: str) -> str:
    """The identity of a volume/secret/config entry: its target (or the source for secrets)."""
    if isinstance(entry, Mapping):
        return str(entry.get("target") or entry.get("source"))
    text = str(entry)
    if key == "volumes":
        parts = text.split(":")
        return parts[1] if len(parts) > 1 else parts[0]
    return text


def merge(base: Any, override: Any, key: str = "") -> Any:
    """Compose's override of ``base`` by ``override`` (see the module docstring)."""
    if key in _AS_MAPPING:
        return {**_as_mapping(base), **_as_mapping(override)}
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for name, value in override.items():
            if name in merged and name not in _REPLACED and name != "test":
                merged[name] = merge(merged[name], value, name)
            else:
                merged[name] = value
        return merged
    if isinstance(base, list) and isinstance(override, list):
        if key in _BY_TARGET:
            entries = {_target(entry, key): entry for entry in base}
            entries.update({_target(entry, key): entry for entry in override})
            return list(entries.values())
        merged_list = list(base)
        merged_list.extend(item for item in override if item not in merged_list)
        return merged_list
    return override


def load_merged(paths: list[Path], environ: Mapping[str, str]) -> dict[str, Any]:
    """The files in order, each overriding the ones before it."""
    model: dict[str, Any] = {}
    for path in paths:
        model = merge(model, load_file(path, environ))
    return model
