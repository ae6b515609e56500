"""The in-memory tree of a SOPS document and sops' (Go's) way of spelling scalar values.

A document is a list of :class:`Branch` (one per YAML document). A branch is an ordered list of
``(key, value)`` pairs; a key is a ``str`` or a :class:`Comment` (then the value is ``None``).
Values: ``str``, ``int``, ``float``, ``bool``, :class:`GoTime`, ``None``, nested
:class:`Branch`, ``list`` (elements may be :class:`Comment`) or :class:`Comment`.

String plaintexts are decoded with ``surrogateescape`` so arbitrary bytes (binary store)
round-trip unchanged through ``str``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from collections.abc import Iterator
from typing import Any

from keel.secrets.errors import FormatError


class Comment(str):
    """A comment line (text after ``#``)."""

    __slots__ = ()


class GoTime(str):
    """A timestamp, held as Go's ``time.MarshalText`` spelling (RFC 3339 with nanoseconds)."""

    __slots__ = ()


class Branch(list[tuple[Any, Any]]):
    """An ordered mapping that keeps duplicate keys and comments, as sops' ``TreeBranch``."""

    def get(self, key: str, default: Any = None) -> Any:
        for k, v in self:
            if k == key and not isinstance(k, Comment):
                return v
        return default

    def keys_in_order(self) -> Iterator[str]:
        return (k for k, _ in self if not isinstance(k, Comment))

    def set(self, key: str, value: Any) -> None:
        for index, (k, _) in enumerate(self):
            if k == key and not isinstance(k, Comment):
                self[index] = (k, value)
                return
        self.append((key, value))

    def remove(self, key: str) -> bool:  # type: ignore[override]
        for index, (k, _) in enumerate(self):
            if k == key and not isinstance(k, Comment):
                del self[index]
                return True
        return False


def encode_str(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def decode_str(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def go_float(value: float) -> str:
    """``strconv.FormatFloat(v, 'f', -1, 64)``: shortest round-trip digits, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(decimal.Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _shortest_digits(value: float) -> tuple[str, int]:
    """(digits, decimal exponent) of the shortest repr: value = 0.d1d2… * 10^exp."""
    _, digits, exponent = decimal.Decimal(repr(abs(value))).as_tuple()
    text = "".join(str(d) for d in digits).rstrip("0") or "0"
    assert isinstance(exponent, int)
    return text, len(digits) + exponent


def go_float_g(value: float) -> str:
    """``strconv.FormatFloat(v, 'g', -1, 64)`` (how yaml.v3 prints floats)."""
    if math.isnan(value) or math.isinf(value):
        return go_float(value)
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    digits, point = _shortest_digits(value)
    exp = point - 1
    # Shortest mode: Go uses %e when exp < -4 or exp >= 6.
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        sign = "-" if value < 0 else ""
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return go_float(value)


def go_json_float(value: float) -> str:
    """``encoding/json`` float64: 'f' unless |v| < 1e-6 or ≥ 1e21, then 'e' with short exponent."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"JSON cannot hold {value!r}")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        digits, point = _shortest_digits(value)
        exp = point - 1
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        sign = "-" if value < 0 else ""
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp)}"
    return go_float(value)


def go_bool(value: bool) -> str:
    return "True" if value else "False"


def flat_line(value: Any, store: str) -> str:
    """A scalar as sops writes it into a one-line-per-key store (dotenv, INI): Go spelling,
    newlines escaped as ``\\n``; such a store has no nesting."""
    if isinstance(value, bool):
        text = go_bool(value)
    elif isinstance(value, float):
        text = go_float(value)
    elif isinstance(value, str | int | GoTime):
        text = str(value)
    else:
        raise FormatError(f"{store} cannot hold nested values")
    return text.replace("\n", "\\n")


_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_go_bool(text: str) -> bool:
    """``strconv.ParseBool``."""
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    raise ValueError(f"invalid bool {text!r}")


def parse_go_int(text: str) -> int:
    """``strconv.Atoi``: decimal, optional sign, 64-bit."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ValueError(f"invalid int {text!r}")
    value = int(text)
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"int out of range {text!r}")
    return value


_GO_FLOAT = re.compile(
    r"[+-]?(?:(?:[0-9][0-9_]*)?\.?[0-9_]*(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE
)


def parse_go_float(text: str) -> float:
    """``strconv.ParseFloat(s, 64)`` for the spellings sops writes and YAML/JSON produce."""
    if not _GO_FLOAT.fullmatch(text) or text in {"", "+", "-", "."}:
        raise ValueError(f"invalid float {text!r}")
    return float(text.replace("_", ""))


def format_time(value: dt.datetime, nanos: int | None = None) -> GoTime:
    """Go ``time.MarshalText``: RFC 3339, fraction trimmed, ``Z`` for UTC offsets."""
    frac_ns = nanos if nanos is not None else value.microsecond * 1000
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if frac_ns:
        text += "." + f"{frac_ns:09d}".rstrip("0")
    offset = value.utcoffset()
    if offset is None or offset == dt.timedelta(0):
        text += "Z"
    else:
        minutes = int(offset.total_seconds()) // 60
        sign = "+" if minutes >= 0 else "-"
        minutes = abs(minutes)
        text += f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return GoTime(text)


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def parse_rfc3339(text: str) -> tuple[dt.datetime, int]:
    """(datetime, nanoseconds) of an RFC 3339 timestamp; ``ValueError`` when it is not one."""
    match = _RFC3339.fullmatch(text)
    if not match:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second, frac, zulu, sign, oh, om = match.groups()
    nanos = int((frac or "0")[:9].ljust(9, "0"))
    if zulu:
        tz = dt.UTC
    else:
        delta = dt.timedelta(hours=int(oh), minutes=int(om))
        tz = dt.timezone(delta if sign == "+" else -delta)
    value = dt.datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), nanos // 1000, tz
    )
    return value, nanos


def mac_aad(lastmodified: str) -> str:
    """``time.Parse(RFC3339, s).Format(RFC3339)``: fraction dropped, ``Z`` for a zero offset."""
    value, _ = parse_rfc3339(lastmodified)
    return format_time(value.replace(microsecond=0), nanos=0)


def to_bytes(value: Any) -> bytes:
    """sops ``ToBytes``: the plaintext bytes of a leaf (also what the MAC hashes)."""
    if isinstance(value, bool):
        return go_bool(value).encode()
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        return go_float(value).encode()
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return encode_str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def type_name(value: Any) -> str:
    """The ``type:`` tag sops writes for a value."""
    if isinstance(value, Comment):
        return "comment"
    if isinstance(value, GoTime):
        return "time"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str | bytes):
        return "str"
    raise TypeError(f"cannot encrypt a value of type {type(value).__name__}")


def to_plain(value: Any) -> Any:
    """A plain Python structure (dict/list/scalars), comments dropped: what JSON would hold."""
    if isinstance(value, Branch):
        return {k: to_plain(v) for k, v in value if not isinstance(k, Comment)}
    if isinstance(value, list):
        return [to_plain(v) for v in value if not isinstance(v, Comment)]
    if isinstance(value, GoTime | Comment):
        return str(value)
    return value


def from_plain(value: Any) -> Any:
    """The inverse of :func:`to_plain` for dicts built in Python (e.g. ``keel secrets init``)."""
    if isinstance(value, dict):
        return Branch((str(k), from_plain(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return [from_plain(v) for v in value]
    return value
