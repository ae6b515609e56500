"""File formats: parse a file into branches + raw ``sops`` metadata, and write them back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from keel.secrets.errors import FormatError, MetadataError
from keel.secrets.metadata import flatten, unflatten
from keel.secrets.model import Branch, Comment, to_plain
from keel.secrets.stores import dotenv_store, ini_store, json_store, yaml_store

Format = Literal["yaml", "json", "dotenv", "ini", "binary"]
FORMATS: tuple[Format, ...] = ("yaml", "json", "dotenv", "ini", "binary")
_BY_SUFFIX: dict[str, Format] = {
    ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".env": "dotenv", ".ini": "ini",
}  # fmt: skip


class _TextStore(Protocol):
    def load(self, data: bytes) -> list[Branch]: ...
    def emit(self, branches: list[Branch]) -> bytes: ...


# Every format but binary, which is one "data" string and has no module of its own.
_TEXT_STORES: dict[str, _TextStore] = {
    "yaml": yaml_store, "json": json_store, "dotenv": dotenv_store, "ini": ini_store,
}  # fmt: skip


def format_for(path: Path | str, explicit: str | None = None) -> Format:
    """The store sops would pick: by extension, anything else is binary."""
    if explicit:
        if explicit not in FORMATS:
            raise FormatError(f"unknown format {explicit!r}; use one of {', '.join(FORMATS)}")
        return explicit
    return _BY_SUFFIX.get(Path(path).suffix.lower(), "binary")


@dataclass(slots=True)
class Parsed:
    branches: list[Branch]
    metadata: dict[str, Any] | None


def load_plain(data: bytes, fmt: Format) -> list[Branch]:
    if fmt in _TEXT_STORES:
        return _TEXT_STORES[fmt].load(data)
    return [Branch([("data", data.decode("utf-8", "surrogateescape"))])]


def load_encrypted(data: bytes, fmt: Format) -> Parsed:
    """Branches without the metadata, and the metadata as plain data (``None`` if absent)."""
    if fmt in ("yaml", "json", "binary"):
        branches = yaml_store.load(data) if fmt == "yaml" else json_store.load(data)
        metadata = None
        for index, branch in enumerate(branches):
            found = branch.get("sops")
            if index == 0 and found is not None:
                metadata = to_plain(found)
            branch.remove("sops")
        if (
            fmt == "binary"
            and metadata is not None
            and list(branches[0].keys_in_order()) != ["data"]
        ):
            raise FormatError("a binary sops file holds exactly one 'data' value")
        return Parsed(branches, metadata)
    if fmt == "dotenv":
        branch = dotenv_store.load(data)[0]
        flat = {
            k[5:]: str(v) for k, v in branch if not isinstance(k, Comment) and k.startswith("sops_")
        }
        data_items = Branch(
            (k, v) for k, v in branch if isinstance(k, Comment) or not k.startswith("sops_")
        )
        return Parsed([data_items], unflatten(flat) if flat else None)
    root = ini_store.load(data)[0]
    section = root.get("sops")
    root.remove("sops")
    if section is None:
        return Parsed([root], None)
    flat = {k: str(v).replace("\\n", "\n") for k, v in section if not isinstance(k, Comment)}
    return Parsed([root], unflatten(flat))


def emit_plain(branches: list[Branch], fmt: Format) -> bytes:
    if fmt in _TEXT_STORES:
        return _TEXT_STORES[fmt].emit(branches)
    value = branches[0].get("data") if branches else None
    if not isinstance(value, str):
        raise FormatError("a binary sops file holds exactly one 'data' string")
    return value.encode("utf-8", "surrogateescape")


def emit_encrypted(branches: list[Branch], metadata: dict[str, Any], fmt: Format) -> bytes:
    if fmt in ("yaml", "json", "binary"):
        block = yaml_store.to_branch(metadata)
        with_meta = [Branch([*branch, ("sops", block)]) for branch in branches]
        if fmt == "yaml":
            return yaml_store.emit(with_meta)
        return json_store.emit(with_meta)
    flat = flatten(metadata)
    if fmt == "dotenv":
        branch = Branch([*branches[0], *((f"sops_{k}", v) for k, v in flat.items())])
        return dotenv_store.emit([branch])
    section = Branch((k, v.replace("\n", "\\n")) for k, v in flat.items())
    return ini_store.emit([Branch([*branches[0], ("sops", section)])])


def require_metadata(parsed: Parsed) -> dict[str, Any]:
    if parsed.metadata is None:
        raise MetadataError(
            "not a sops-encrypted file (no 'sops' metadata); encrypt it with `keel secrets encrypt`"
        )
    return parsed.metadata
