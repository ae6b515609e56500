"""Value types shared by the settings sections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


class SecretStr(str):
    """A string whose ``repr`` never shows its value.

    It is still a ``str`` (so it can be used directly as a password or key), but printing a
    settings object, an exception with it as an argument or a debugger view shows a mask.
    Every value of this type is also registered with the log redactor at load time.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "SecretStr('**********')"

    def reveal(self) -> str:
        """The plain value, spelled out at the call site so reviewers see where secrets go."""
        return str.__str__(self)


AppEnv = Literal["local", "dev", "test", "prod"]
ENVIRONMENTS: tuple[AppEnv, ...] = ("local", "dev", "test", "prod")


def mask(value: str) -> str:
    """How a secret value is shown in errors and in ``keel config show``."""
    if not value:
        return "(empty)"
    return f"****({len(value)} chars)"


class SecretValues(frozenset[str]):
    """The set of loaded secret values; its ``repr`` shows only how many there are."""

    def __repr__(self) -> str:
        return f"SecretValues(<{len(self)} values>)"


Layer = Literal["default", "app.env", "secrets", "env"]


@dataclass(frozen=True, slots=True)
class Source:
    """Where a setting's value came from: its layer and ``file:line`` / ``env NAME``."""

    layer: Layer
    where: str

    def __str__(self) -> str:
        return self.layer if self.layer == "default" else f"{self.layer} ({self.where})"
