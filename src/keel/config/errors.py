"""The one error type configuration loading raises."""

from __future__ import annotations


class ConfigError(Exception):
    """Every problem found while loading, reported together, one line each."""

    def __init__(self, problems: list[str], *, header: str = "invalid configuration") -> None:
        self.problems = list(problems)
        self.header = header
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.problems)
        lines = [f"{self.header} ({count} problem{'s' if count != 1 else ''}):"]
        lines.extend(f"  - {problem}" for problem in self.problems)
        return "\n".join(lines)
