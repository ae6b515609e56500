"""The registry of every setting name: which section and attribute it fills, its type, secrecy,
the range declared on the field (``Annotated[int, msgspec.Meta(ge=..., le=...)]``), and the one
accessor that reads a setting's value from a :class:`~keel.config.settings.Settings`."""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args, get_origin

import msgspec

from keel.config.settings import SECTIONS
from keel.config.types import SecretStr

if TYPE_CHECKING:
    from keel.config.settings import Settings


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    section: str
    attr: str
    type: Any  # without the Annotated range
    secret: bool
    default: Any
    # Inclusive bounds from the field's msgspec.Meta(ge=..., le=...), None where unbounded.
    low: float | None = None
    high: float | None = None

    def value_in(self, settings: Settings) -> Any:
        """This setting's value in ``settings``."""
        return getattr(getattr(settings, self.section), self.attr)

    def range_problem(self, value: Any) -> str | None:
        """``expected LOW..HIGH, got VALUE`` when ``value`` is outside the declared range."""
        if self.low is None and self.high is None:
            return None
        if (self.low is None or value >= self.low) and (self.high is None or value <= self.high):
            return None
        low = "" if self.low is None else f"{self.low:g}"
        high = "" if self.high is None else f"{self.high:g}"
        return f"expected {low}..{high}, got {value!r}"

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
        hints = typing.get_type_hints(struct, include_extras=True)
        for info in msgspec.structs.fields(struct):
            tp, low, high = _unwrap(hints[info.name])
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
                low=low,
                high=high,
            )
    return specs


def _unwrap(tp: Any) -> tuple[Any, float | None, float | None]:
    """(the plain type, ge, le) of ``Annotated[T, msgspec.Meta(ge=..., le=...)]``."""
    if get_origin(tp) is not Annotated:
        return tp, None, None
    base, *extras = get_args(tp)
    low = high = None
    for meta in extras:
        if isinstance(meta, msgspec.Meta):
            low = meta.ge if meta.ge is not None else low
            high = meta.le if meta.le is not None else high
    return base, low, high
