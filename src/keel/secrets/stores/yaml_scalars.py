"""YAML scalars typed as Go's yaml.v3 types them (not PyYAML's YAML 1.1 rules).

The typing decides both what ``type:`` an encrypted value gets and the bytes an unencrypted
value adds to the MAC, so it has to agree with sops (FORMAT.md §9.1).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import re
from typing import Any

from keel.secrets.model import GoTime, decode_str, format_time

_NULLS = {"", "~", "null", "Null", "NULL"}
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_SPECIAL_FLOATS = {
    ".inf": math.inf, ".Inf": math.inf, ".INF": math.inf,
    "+.inf": math.inf, "+.Inf": math.inf, "+.INF": math.inf,
    "-.inf": -math.inf, "-.Inf": -math.inf, "-.INF": -math.inf,
    ".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan,
}  # fmt: skip
_INT = re.compile(r"([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2}))"
    r"|(?: (\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?))?"
)
_INT64 = (-(1 << 63), (1 << 63) - 1)


def parse_go_int(text: str) -> int | None:
    """``strconv.ParseInt(s, 0, 64)`` (then ParseUint) after yaml.v3 removed underscores."""
    match = _INT.fullmatch(text)
    if not match:
        return None
    sign, body = match.groups()
    lower = body.lower()
    if lower.startswith(("0x", "0o", "0b")):
        value = int(body, 0)
    elif len(body) > 1 and body.startswith("0"):
        value = int(body, 8)
    else:
        value = int(body)
    value = -value if sign == "-" else value
    if value < _INT64[0] or value > (1 << 64) - 1:
        return None
    return value


def parse_timestamp(text: str) -> GoTime | None:
    match = _TIMESTAMP.fullmatch(text)
    if not match:
        return None
    y, mo, d, h, mi, s, frac, zone, h2, mi2, s2, frac2 = match.groups()
    hour, minute, second, fraction = (
        (h, mi, s, frac) if h else (h2 or "0", mi2 or "0", s2 or "0", frac2)
    )
    tz: dt.tzinfo = dt.UTC
    if zone and zone != "Z":
        delta = dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        tz = dt.timezone(delta if zone[0] == "+" else -delta)
    nanos = int((fraction or "0")[:9].ljust(9, "0"))
    try:
        value = dt.datetime(
            int(y), int(mo), int(d), int(hour), int(minute), int(second), nanos // 1000, tz
        )
    except ValueError:
        return None
    return format_time(value, nanos=nanos)


def resolve_plain(text: str) -> Any:
    """The value of an untagged plain scalar."""
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    if text[0] in "+-.0123456789":
        if text[0].isdigit():
            stamp = parse_timestamp(text)
            if stamp is not None:
                return stamp
        plain = text.replace("_", "")
        integer = parse_go_int(plain)
        if integer is not None:
            return integer
        if _FLOAT.fullmatch(plain):
            return float(plain)
    return text


def resolve_tagged(tag: str, text: str) -> Any:
    """The value of a scalar with an explicit tag (``!!int 3``, ``!!binary …``, ``!Ref x``)."""
    short = tag.rsplit(":", 1)[-1] if tag.startswith("tag:yaml.org,2002:") else None
    if short == "binary":
        try:
            return decode_str(base64.b64decode("".join(text.split())))
        except binascii.Error:
            return text
    if short == "null" and text in _NULLS:
        return None
    if short == "bool" and text in _BOOLS:
        return _BOOLS[text]
    if short == "int":
        integer = parse_go_int(text.replace("_", ""))
        if integer is not None:
            return integer
    if short == "float":
        value = resolve_plain(text)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    if short == "timestamp":
        stamp = parse_timestamp(text)
        if stamp is not None:
            return stamp
    return text
