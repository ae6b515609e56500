"""The registry of every setting name: which section and attribute it fills, its type, secrecy."""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

import msgspec

from keel.config.settings import SECTIONS
from keel.config.types import SecretStr


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    section: str
    attr: str
    type: Any
    secret: bool
    default: Any
    # The declared type with its constraints (``Annotated[int, msgspec.Meta(ge=1)]``); the
    # loader converts to ``type`` and then checks against this, in the same pass.
    checked_type: Any = None

    @property
    def is_list(self) -> bool:
        return get_origin(self.type) is list

    def describe_type(self) -> str:
        return describe(self.checked_type if self.checked_type is not None else self.type)


def _bounds(meta: msgspec.Meta) -> str:
    parts = []
    if meta.ge is not None and meta.le is not None:
        return f"{meta.ge:g}..{meta.le:g}"
    for bound, sign in ((meta.ge, ">="), (meta.gt, ">"), (meta.le, "<="), (meta.lt, "<")):
        if bound is not None:
            parts.append(f"{sign} {bound:g}")
    return " and ".join(parts)


def describe(tp: Any) -> str:
    if get_origin(tp) is Annotated:
        base, *extras = get_args(tp)
        bounds = [_bounds(m) for m in extras if isinstance(m, msgspec.Meta) and _bounds(m)]
        return f"{describe(base)} in {', '.join(bounds)}" if bounds else describe(base)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str or tp is SecretStr:
        return "a string"
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(tp))
    if origin is list:
        return "a comma-separated list"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp))


@functools.cache
def field_specs() -> dict[str, FieldSpec]:
    """Every setting by its env name. Names are unique across sections (a unit test holds it)."""
    specs: dict[str, FieldSpec] = {}
    for section, struct in SECTIONS.items():
        hints = typing.get_type_hints(struct, include_extras=True)
        for info in msgspec.structs.fields(struct):
            checked = hints[info.name]
            tp = get_args(checked)[0] if get_origin(checked) is Annotated else checked
            default = info.default
            if default is msgspec.NODEFAULT and info.default_factory is not msgspec.NODEFAULT:
                default = info.default_factory()
            specs[info.encode_name] = FieldSpec(
                name=info.encode_name,
                section=section,
                attr=info.name,
                type=tp,
                secret=tp is SecretStr,
                default=default,
                checked_type=checked if checked is not tp else None,
            )
    return specs
