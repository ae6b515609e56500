"""The INI store (secondary): sections are top-level keys; keys before any section are DEFAULT."""

from __future__ import annotations

from typing import Any

from keel.secrets.errors import FormatError
from keel.secrets.model import Branch, Comment, flat_line


def load(data: bytes) -> list[Branch]:
    root = Branch()
    section = Branch()
    root.append(("DEFAULT", section))
    pending: list[str] = []
    text = data.decode("utf-8", "surrogateescape")
    raw_lines = text.splitlines()
    number = 0
    while number < len(raw_lines):
        line = raw_lines[number].strip()
        number += 1
        if not line:
            continue
        if line[0] in "#;":
            pending.append(line[1:].strip())
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise FormatError(f"line {number}: unterminated section header {line!r}")
            name = line[1:-1].strip()
            section = root.get(name)
            if section is None:
                section = Branch()
                root.append((name, section))
            section.extend((Comment(c), None) for c in pending)
            pending = []
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if cut < 0:
            # The line itself is not quoted: it may hold a secret.
            raise FormatError(f"line {number}: invalid INI line (no '=')")
        key, value = line[:cut].strip(), line[cut + 1 :].strip()
        if value.startswith('"""') and (len(value) < 6 or not value.endswith('"""')):
            # a multi-line value (sops 3.13.0/3.13.1 metadata): up to the closing quotes
            parts = [value]
            while number < len(raw_lines) and not parts[-1].endswith('"""'):
                parts.append(raw_lines[number])
                number += 1
            value = "\n".join(parts)
        if len(value) >= 6 and value.startswith('"""') and value.endswith('"""'):
            value = value[3:-3]
        elif len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'`":
            value = value[1:-1]
        section.append((key, value))
        section.extend((Comment(c), None) for c in pending)
        pending = []
    return [root]


def _comment_run(items: list[tuple[Any, Any]]) -> int:
    count = 0
    for key, _ in items:
        if not isinstance(key, Comment):
            break
        count += 1
    return count


def emit(branches: list[Branch]) -> bytes:
    out: list[str] = []
    for name, section in branches[0] if branches else Branch():
        if isinstance(name, Comment):
            continue
        if not isinstance(section, Branch):
            raise FormatError(f"INI top-level key {name!r} must be a section")
        body: list[str] = []
        items = list(section)
        width = max((len(str(k)) for k, _ in items if not isinstance(k, Comment)), default=0)
        # go-ini keeps a comment with the key after it; sops stores it after that key
        for index, (key, value) in enumerate(items):
            if isinstance(key, Comment):
                continue
            following = items[index + 1 :]
            for comment, _ in following[: _comment_run(following)]:
                body.append(f"; {comment}")
            body.append(f"{key:<{width}} = {flat_line(value, 'INI sections')}")
        if name == "DEFAULT":
            if body:
                out.append("\n".join(body) + "\n")
            continue
        out.append(f"[{name}]\n" + "".join(line + "\n" for line in body))
    return "\n".join(out).encode("utf-8", "surrogateescape")
