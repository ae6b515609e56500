"""The JSON store: ordered (duplicate keys kept), Go ``encoding/json`` spelling on output."""

from __future__ import annotations

import json
import math
from typing import Any

from keel.secrets.errors import FormatError
from keel.secrets.model import Branch, Comment, go_json_float

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
               "\u2029": "\\u2029"}  # fmt: skip


# sops decodes every JSON number into a Go float64. Integers up to 2**53 survive that exactly
# (and hash, print and encrypt as Keel's ints do); a larger one is rounded there, so the MAC
# sops computes is over the rounded float. Read it as that float too, or sops would reject the
# MAC of a file Keel wrote (and an encrypted one beyond int64 would not decrypt in sops).
_EXACT_IN_FLOAT64 = 2**53


def _sops_int(text: str) -> int | float:
    value = int(text)
    return value if -_EXACT_IN_FLOAT64 <= value <= _EXACT_IN_FLOAT64 else float(value)


def load(data: bytes) -> list[Branch]:
    try:
        value = json.loads(
            data.decode("utf-8", "surrogateescape"),
            object_pairs_hook=Branch,
            parse_constant=float,
            parse_int=_sops_int,
        )
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(value, Branch):
        raise FormatError("the JSON top level is not an object (sops needs one)")
    return [value]


def go_string(text: str) -> str:
    """``json.Marshal`` of a string: HTML characters escaped, invalid UTF-8 as U+FFFD."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    encoded = json.dumps(text, ensure_ascii=False)
    if any(ch in encoded for ch in _GO_ESCAPES):
        encoded = "".join(_GO_ESCAPES.get(ch, ch) for ch in encoded)
    return encoded


def _value(value: Any, depth: int, indent: str) -> str:
    pad = "\n" + indent * (depth + 1)
    end = "\n" + indent * depth
    if isinstance(value, Branch):
        items = [(k, v) for k, v in value if not isinstance(k, Comment)]
        if not items:
            return "{}"
        body = ("," + pad).join(
            f"{go_string(str(k))}: {_value(v, depth + 1, indent)}" for k, v in items
        )
        return "{" + pad + body + end + "}"
    if isinstance(value, list):
        elements = [v for v in value if not isinstance(v, Comment)]
        if not elements:
            return "[]"
        return (
            "[" + pad + ("," + pad).join(_value(v, depth + 1, indent) for v in elements) + end + "]"
        )
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise FormatError(f"JSON cannot hold the number {value!r}")
        return go_json_float(value)
    if isinstance(value, dict):
        return _value(Branch(value.items()), depth, indent)
    return go_string(str(value))


def value_text(value: Any) -> str:
    """One value (scalar, list or map) as indented JSON."""
    return _value(value, 0, "\t")


def emit(branches: list[Branch], *, indent: str = "\t") -> bytes:
    """As sops prints JSON: ``json.Indent`` with a tab, then a newline."""
    branch = branches[0] if branches else Branch()
    return (_value(branch, 0, indent) + "\n").encode("utf-8")
