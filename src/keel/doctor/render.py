"""The report: one line per check (✓/✗ on a terminal, ASCII otherwise) or JSON.

Secret values never reach the output: every value the configuration marks secret (and every
value of the secrets file) is replaced, whatever a driver put in its error message.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from keel.doctor.model import Result, Status

JSON_VERSION = 1
REDACTED = "[redacted]"
_SYMBOLS = {Status.OK: "✓", Status.WARN: "!", Status.FAIL: "✗", Status.SKIP: "-"}
_WORDS = {Status.OK: "OK  ", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.SKIP: "SKIP"}


def redactor(secrets: Sequence[str]) -> object:
    ordered = sorted({s for s in secrets if s}, key=len, reverse=True)

    def clean(text: str) -> str:
        for value in ordered:
            text = text.replace(value, REDACTED)
        return text

    return clean


def summary(results: Sequence[Result]) -> dict[str, int]:
    counts = Counter(r.status for r in results)
    return {status.value: counts.get(status, 0) for status in Status}


def exit_code(results: Sequence[Result], *, strict: bool = False) -> int:
    failing = {Status.FAIL, Status.WARN} if strict else {Status.FAIL}
    return 1 if any(r.status in failing for r in results) else 0


def render_text(results: Sequence[Result], env: str, *, fancy: bool, clean: object) -> str:
    assert callable(clean)
    width = max((len(r.check.id) for r in results), default=0)
    lines = [f"keel doctor: APP_ENV={env}"]
    for result in results:
        mark = _SYMBOLS[result.status] if fancy else _WORDS[result.status]
        detail_lines = clean(result.detail).splitlines() or [""]
        lines.append(f"{mark} {result.check.id.ljust(width)}  {detail_lines[0]}")
        lines.extend(f"    {line}" for line in detail_lines[1:])
        if result.status in (Status.FAIL, Status.WARN):
            lines.append(f"    fix:  {clean(result.fix)}")
            lines.append(f"    docs: {result.check.docs}")
    counts = summary(results)
    lines.append(
        f"{counts['ok']} ok, {counts['warn']} warning(s), {counts['fail']} failed, "
        f"{counts['skip']} skipped"
    )
    return "\n".join(lines)


def render_json(results: Sequence[Result], env: str, code: int, *, clean: object) -> str:
    assert callable(clean)
    document = {
        "version": JSON_VERSION,
        "env": env,
        "checks": [
            {
                "id": r.check.id,
                "group": r.check.group,
                "title": r.check.title,
                "status": r.status.value,
                "detail": clean(r.detail),
                "fix": clean(r.fix),
                "docs": r.check.docs,
                "duration_ms": r.duration_ms,
            }
            for r in results
        ],
        "summary": summary(results),
        "exit_code": code,
    }
    return json.dumps(document, indent=2, ensure_ascii=False)
