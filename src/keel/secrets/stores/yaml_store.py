"""The YAML store: yaml.v3 typing, comments kept as tree items, sops' layout on output.

Parsing uses PyYAML's composer (libyaml when available: the config loader decrypts at every
start, so speed matters) with every plain scalar left untyped; :mod:`yaml_scalars` types them
the yaml.v3 way. Comments are not in the node graph, so they are found on the source lines
(outside any scalar) and put back into the tree by position, as sops does.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any

import yaml

from keel.secrets.errors import FormatError
from keel.secrets.model import Branch, Comment, GoTime, go_float_g
from keel.secrets.stores.yaml_scalars import resolve_plain, resolve_tagged

_PLAIN = "keel:plain"
_STR = "tag:yaml.org,2002:str"
_BaseLoader: Any = getattr(yaml, "CBaseLoader", yaml.BaseLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    """Composes nodes without PyYAML's YAML 1.1 typing: plain scalars stay ``keel:plain``."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            return _PLAIN if implicit[0] else _STR
        return str(super().resolve(kind, value, implicit))


@dataclass(slots=True)
class _Comment:
    line: int
    column: int
    text: str


# --- loading ----------------------------------------------------------------------------


def load(data: bytes) -> list[Branch]:
    """Every document as a :class:`Branch` (empty documents skipped)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FormatError(f"invalid YAML{where}: {problem}") from None
    comments = _find_comments(text, nodes) if "#" in text else []
    branches: list[Branch] = []
    for index, node in enumerate(nodes):
        if isinstance(node, yaml.ScalarNode) and node.value == "" and node.tag == _PLAIN:
            continue
        if not isinstance(node, yaml.MappingNode):
            raise FormatError(f"YAML document {index + 1} is not a map (sops needs key: value)")
        end = nodes[index + 1].start_mark.line if index + 1 < len(nodes) else 1 << 62
        mine = [
            c
            for c in comments
            if node.start_mark.line <= c.line < end
            or (index == 0 and c.line < node.start_mark.line)
        ]
        placed = _place(node, mine)
        branches.append(_build(node, placed))
    return branches


def _scalar_value(node: yaml.ScalarNode) -> Any:
    if node.tag == _PLAIN:
        return resolve_plain(node.value)
    if node.tag == _STR:
        return node.value
    return resolve_tagged(node.tag, node.value)


def _build(node: yaml.Node, placed: dict[int, list[tuple[int, str]]]) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return _scalar_value(node)
    inserts = placed.get(id(node), [])
    if isinstance(node, yaml.SequenceNode):
        seq: list[Any] = []
        _with_comments(seq, [_build(item, placed) for item in node.value], inserts, pair=False)
        return seq
    assert isinstance(node, yaml.MappingNode)
    items: list[tuple[Any, Any]] = []
    seen: set[str] = set()
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise FormatError(
                f"line {key_node.start_mark.line + 1}: map keys must be strings "
                "(sops refuses others)"
            )
        key = key_node.value
        if key in seen:
            raise FormatError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        seen.add(key)
        items.append((key, _build(value_node, placed)))
    branch = Branch()
    _with_comments(branch, items, inserts, pair=True)
    return branch


def _with_comments(
    out: list[Any], items: list[Any], inserts: list[tuple[int, str]], *, pair: bool
) -> None:
    position = 0
    for index, item in enumerate(items):
        while position < len(inserts) and inserts[position][0] <= index:
            comment = Comment(inserts[position][1])
            out.append((comment, None) if pair else comment)
            position += 1
        out.append(item)
    for _, text in inserts[position:]:
        out.append((Comment(text), None) if pair else Comment(text))


def _find_comments(text: str, documents: list[yaml.Node]) -> list[_Comment]:
    """Every ``#`` comment outside scalars, with its line and the column it belongs to."""
    lines = text.split("\n")
    hash_lines = {index for index, line in enumerate(lines) if "#" in line}
    covered: dict[int, list[tuple[int, float]]] = {}
    stack: list[yaml.Node] = list(documents)
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            start, end = node.start_mark, node.end_mark
            for row in range(start.line, end.line + 1):
                if row in hash_lines:
                    low = start.column if row == start.line else 0
                    high: float = end.column if row == end.line else float("inf")
                    covered.setdefault(row, []).append((low, high))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
    found: list[_Comment] = []
    for number in sorted(hash_lines):
        line = lines[number]
        spans = covered.get(number, [])
        for match in re.finditer("#", line):
            pos = match.start()
            if pos > 0 and line[pos - 1] not in " \t":
                continue
            if any(low <= pos < high for low, high in spans):
                continue
            before = line[:pos]
            column = pos if not before.strip() else len(before) - len(before.lstrip(" -"))
            found.append(_Comment(number, column, line[pos + 1 :].rstrip()))
            break
    return found


def _place(root: yaml.MappingNode, comments: list[_Comment]) -> dict[int, list[tuple[int, str]]]:
    """Which container each comment goes into, and before which item."""
    placed: dict[int, list[tuple[int, str]]] = {}
    for comment in comments:
        node: yaml.Node = root
        while True:
            if isinstance(node, yaml.MappingNode):
                starts = [key.start_mark.line for key, _ in node.value]
                children = [value for _, value in node.value]
            else:
                starts = [item.start_mark.line for item in node.value]
                children = list(node.value)
            # the item whose lines contain the comment: last one starting at or before it
            index = bisect.bisect_right(starts, comment.line) - 1
            child = children[index] if index >= 0 else None
            if (
                child is not None
                and isinstance(child, yaml.MappingNode | yaml.SequenceNode)
                and not child.flow_style
                and child.value
                and child.start_mark.column <= comment.column
                and starts[index]
                < comment.line + (1 if child.start_mark.line > starts[index] else 0)
                and comment.line <= child.end_mark.line
            ):
                node = child
                continue
            position = bisect.bisect_left(starts, comment.line)
            placed.setdefault(id(node), []).append((position, comment.text))
            break
    return placed


# --- emitting -----------------------------------------------------------------------------

_INDICATORS = set("-?:,[]{}#&*!|>'\"%@`")


def _resolves_to_str(text: str) -> bool:
    value = resolve_plain(text)
    return isinstance(value, str) and not isinstance(value, GoTime)


_YAML11_WORDS = {
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
    "on", "On", "ON", "off", "Off", "OFF", "<<", "=",
}  # fmt: skip


def _printable(ch: str) -> bool:
    """yaml.v3's ``is_printable`` (no tab, nothing beyond the BMP)."""
    code = ord(ch)
    return (
        code == 0x0A
        or 0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
    )


def _all_printable(text: str) -> bool:
    return all(_printable(ch) for ch in text)


def _plain_ok(text: str) -> bool:
    if not text or text != text.strip() or "\n" in text or not _all_printable(text):
        return False
    if text in _YAML11_WORDS:
        return False
    if text[0] in _INDICATORS and not (text[0] in "-?:" and len(text) > 1 and text[1] != " "):
        return False
    if ": " in text or " #" in text or text.endswith(":") or text.startswith(("---", "...")):
        return False
    return _resolves_to_str(text)


def _double_quoted(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif 0xDC80 <= code <= 0xDCFF:  # a raw byte kept by surrogateescape
            out.append(f"\\x{code - 0xDC00:02X}")
        elif _printable(ch):
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02X}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04X}")
        else:
            out.append(f"\\U{code:08X}")
    out.append('"')
    return "".join(out)


def _literal_ok(text: str) -> bool:
    if "\n" not in text or text.startswith((" ", "\n")) or "\r" in text:
        return False
    return _all_printable(text)


def scalar(value: Any) -> str:
    """One scalar on a single line (block scalars are handled by the caller)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = go_float_g(value)
        return {"+Inf": ".inf", "-Inf": "-.inf", "NaN": ".nan"}.get(text, text)
    if isinstance(value, GoTime):
        return str(value)
    text = str(value)
    if _plain_ok(text):
        return text
    if (
        "\n" not in text
        and _all_printable(text)
        and _resolves_to_str(text)
        and text not in _YAML11_WORDS
        and text.strip()
    ):
        return "'" + text.replace("'", "''") + "'"
    return _double_quoted(text)


def _literal(text: str, indent: str) -> list[str]:
    if text.endswith("\n\n") or text == "\n":
        chomp = "+"
    elif text.endswith("\n"):
        chomp = ""
    else:
        chomp = "-"
    body = text[:-1] if text.endswith("\n") else text
    lines = [f"|{chomp}"]
    lines.extend((indent + line) if line else "" for line in body.split("\n"))
    return lines


def _emit_value(
    value: Any, indent: int, step: int, lines: list[str], prefix: str, *, base: int | None = None
) -> None:
    """Append ``prefix`` + value (prefix is ``key:`` or ``-``) at ``indent``.

    Nested content goes to ``base + step`` (yaml.v3 measures from the enclosing sequence for a
    map inside a list), never less than two columns right of the key.
    """
    pad = " " * indent
    child = max((indent if base is None else base) + step, indent + 2)
    if isinstance(value, Branch) and any(not isinstance(k, Comment) for k, _ in value):
        lines.append(f"{pad}{prefix}")
        _emit_branch(value, child, step, lines)
    elif isinstance(value, list) and value and any(not isinstance(v, Comment) for v in value):
        lines.append(f"{pad}{prefix}")
        _emit_list(value, child, step, lines)
    elif isinstance(value, Branch | list):
        lines.append(f"{pad}{prefix} {'{}' if isinstance(value, Branch) else '[]'}")
        for item in value:  # only comments inside
            text = item[0] if isinstance(item, tuple) else item
            lines.append(f"{' ' * child}#{text}")
    elif isinstance(value, str) and not isinstance(value, GoTime) and _literal_ok(value):
        block = _literal(value, " " * child)
        lines.append(f"{pad}{prefix} {block[0]}")
        lines.extend(block[1:])
    else:
        lines.append(f"{pad}{prefix} {scalar(value)}")


def _emit_branch(
    branch: Branch, indent: int, step: int, lines: list[str], base: int | None = None
) -> None:
    pad = " " * indent
    for key, value in branch:
        if isinstance(key, Comment):
            lines.append(f"{pad}#{key}")
        else:
            _emit_value(value, indent, step, lines, f"{scalar(str(key))}:", base=base)


def _emit_list(items: list[Any], indent: int, step: int, lines: list[str]) -> None:
    pad = " " * indent
    for item in items:
        if isinstance(item, Comment):
            lines.append(f"{pad}#{item}")
        elif isinstance(item, Branch) and any(not isinstance(k, Comment) for k, _ in item):
            sub: list[str] = []
            leading = [k for k, _ in _leading_comments(item)]
            for text in leading:
                lines.append(f"{pad}#{text}")
            _emit_branch(Branch(item[len(leading) :]), indent + 2, step, sub, base=indent)
            first = sub[0][indent + 2 :]
            lines.append(f"{pad}- {first}")
            lines.extend(sub[1:])
        elif isinstance(item, list) and item and any(not isinstance(v, Comment) for v in item):
            sub = []
            _emit_list(item, indent + 2, step, sub)
            lines.append(f"{pad}- {sub[0][indent + 2 :]}")
            lines.extend(sub[1:])
        else:
            _emit_value(item, indent, step, lines, "-")


def _leading_comments(branch: Branch) -> list[tuple[Any, Any]]:
    out = []
    for key, value in branch:
        if not isinstance(key, Comment):
            break
        out.append((key, value))
    return out


def emit(branches: list[Branch], *, indent: int = 4) -> bytes:
    """sops' YAML layout: 4-space indent, sequences indented under their key, ``---`` between
    documents."""
    documents: list[str] = []
    for branch in branches:
        lines: list[str] = []
        if not any(not isinstance(k, Comment) for k, _ in branch):
            lines.extend(f"#{k}" for k, _ in branch)
            lines.append("{}")
        else:
            _emit_branch(branch, 0, indent, lines)
        documents.append("\n".join(lines) + "\n")
    return "---\n".join(documents).encode("utf-8", "surrogateescape")


def emit_node(value: Any, *, indent: int = 4) -> bytes:
    """Any value (map, list or scalar) as a YAML document."""
    if isinstance(value, Branch):
        return emit([value], indent=indent)
    lines: list[str] = []
    if isinstance(value, list) and any(not isinstance(v, Comment) for v in value):
        _emit_list(value, 0, indent, lines)
    else:
        lines.append(scalar(value))
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def to_branch(value: Any) -> Any:
    """Plain dicts/lists (metadata) → branches, for :func:`emit`."""
    if isinstance(value, dict):
        return Branch((k, to_branch(v)) for k, v in value.items())
    if isinstance(value, list):
        return [to_branch(v) for v in value]
    return value
