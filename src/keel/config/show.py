"""``keel config show`` and ``ECHO_CONFIG``: effective settings with the source of each."""

from __future__ import annotations

from typing import Any

from keel.config.fields import field_specs
from keel.config.loader import LoadedConfig
from keel.config.types import mask


def effective_rows(loaded: LoadedConfig, *, reveal: bool = False) -> list[tuple[str, str, str]]:
    """(NAME, shown value, source) for every setting, in section order."""
    rows: list[tuple[str, str, str]] = []
    for name, spec in field_specs().items():
        value: Any = spec.value_in(loaded.settings)
        if isinstance(value, list):
            shown = ",".join(value)
        elif isinstance(value, bool):
            shown = str(value).lower()
        else:
            shown = str(value)
        if spec.secret and not reveal:
            shown = mask(shown)
        rows.append((name, shown, str(loaded.sources.get(name, "default"))))
    return rows


def render_table(loaded: LoadedConfig, *, reveal: bool = False) -> str:
    rows = effective_rows(loaded, reveal=reveal)
    width = max(len(name) for name, _, _ in rows)
    value_width = min(48, max(len(value) for _, value, _ in rows))
    header = f"# APP_ENV={loaded.settings.app.env}  root={loaded.settings.root}"
    body = [f"{name:<{width}}  {value:<{value_width}}  # {source}" for name, value, source in rows]
    return "\n".join([header, *body])


def as_dict(loaded: LoadedConfig, *, reveal: bool = False) -> dict[str, dict[str, str]]:
    return {
        name: {"value": value, "source": source}
        for name, value, source in effective_rows(loaded, reveal=reveal)
    }
