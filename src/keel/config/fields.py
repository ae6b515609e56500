"""The registry of every setting name: which section and attribute it fills, its type, secrecy."""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

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

    @property
    def is_list(self) -> bool:
        return get_origin(self.type) is list

    def describe_type(self) -> str:
        return describe(self.type)


def describe(tp: Any) -> str:
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
        hints = typing.get_type_hints(struct)
        for info in msgspec.structs.fields(struct):
            tp = hints[info.name]
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
            )
    return specs
