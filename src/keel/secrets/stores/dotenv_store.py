"""The dotenv store: ``KEY=value`` lines, ``#`` comments, every value a string (no trimming)."""

from __future__ import annotations

from keel.secrets.errors import FormatError
from keel.secrets.model import Branch, Comment, flat_line


def load(data: bytes) -> list[Branch]:
    branch = Branch()
    text = data.decode("utf-8", "surrogateescape")
    for number, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        if line.startswith("#"):
            branch.append((Comment(line[1:]), None))
            continue
        key, sep, value = line.partition("=")
        if not sep:
            # The line itself is not quoted: it may hold a secret.
            raise FormatError(f"line {number}: invalid dotenv line (no '=')")
        branch.append((key, value.replace("\\n", "\n")))
    return [branch]


def emit(branches: list[Branch]) -> bytes:
    lines: list[str] = []
    for key, value in branches[0] if branches else Branch():
        if isinstance(key, Comment):
            lines.append(f"#{key}\n")
        else:
            lines.append(f"{key}={flat_line(value, 'dotenv files')}\n")
    return "".join(lines).encode("utf-8", "surrogateescape")
