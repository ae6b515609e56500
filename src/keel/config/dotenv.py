"""A strict reader for ``configs/<env>/app.env`` that remembers line numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_LINE = re.compile(r"^(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*)$")


@dataclass(frozen=True, slots=True)
class EnvLine:
    key: str
    value: str
    path: Path
    lineno: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.lineno}"


def _unquote(raw: str) -> str:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        inner = value[1:-1]
        if value[0] == '"':
            inner = inner.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        return inner
    # An unquoted value ends at " #" (inline comment); a bare "#" inside a value is kept.
    hash_at = value.find(" #")
    return value[:hash_at].rstrip() if hash_at >= 0 else value


def parse_env_file(path: Path) -> tuple[list[EnvLine], list[str]]:
    """Return the assignments and a list of syntax problems (``file:line: message``)."""
    lines: list[EnvLine] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for lineno, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(stripped)
        if match is None:
            problems.append(f"{path}:{lineno}: not a KEY=value line: {stripped[:40]!r}")
            continue
        key = match["key"]
        if key in seen:
            problems.append(f"{path}:{lineno}: {key} is already set on line {seen[key]}")
            continue
        seen[key] = lineno
        lines.append(EnvLine(key, _unquote(match["value"]), path, lineno))
    return lines, problems
