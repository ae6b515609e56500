"""The report's shape: symbols on a terminal, words elsewhere, fix/docs under failures and
warnings only, --strict, redaction, JSON version. (Each check itself: tests/service/doctor.)"""

from __future__ import annotations

import json

from keel.doctor.model import Check, Result, Status
from keel.doctor.render import exit_code, redactor, render_json, render_text


async def _never(_: object) -> object:
    raise AssertionError


def _result(check_id: str, status: Status, detail: str, fix: str = "") -> Result:
    check = Check(check_id, check_id, _never, fix="default fix", docs="docs/x.md#y")  # type: ignore[arg-type]
    return Result(check, status, detail, fix, 1.0)


RESULTS = [
    _result("a.ok", Status.OK, "fine"),
    _result("b.warn", Status.WARN, "so-so", "look at it"),
    _result("c.fail", Status.FAIL, "broken: password hunter2\nsecond line", "fix it"),
    _result("d.skip", Status.SKIP, "not here"),
]


def test_terminal_symbols_and_plain_words() -> None:
    clean = redactor(["hunter2"])
    fancy = render_text(RESULTS, "test", fancy=True, clean=clean).splitlines()
    plain = render_text(RESULTS, "test", fancy=False, clean=clean).splitlines()
    assert [line[:1] for line in fancy[1:] if not line.startswith(" ")][:4] == ["✓", "!", "✗", "-"]
    assert plain[1].startswith("OK   a.ok ")
    assert plain[2].startswith("WARN b.warn ")
    assert plain[3:5] == ["    fix:  look at it", "    docs: docs/x.md#y"]
    assert plain[5] == "FAIL c.fail  broken: password [redacted]"
    assert plain[6:9] == ["    second line", "    fix:  fix it", "    docs: docs/x.md#y"]
    assert plain[9].startswith("SKIP d.skip ")
    assert plain[-1] == "1 ok, 1 warning(s), 1 failed, 1 skipped"
    assert "hunter2" not in "\n".join(fancy + plain)


def test_exit_codes_and_strict() -> None:
    assert exit_code(RESULTS) == 1
    assert exit_code([RESULTS[0], RESULTS[1], RESULTS[3]]) == 0
    assert exit_code([RESULTS[0], RESULTS[1]], strict=True) == 1


def test_json_document() -> None:
    doc = json.loads(render_json(RESULTS, "prod", 1, clean=redactor(["hunter2"])))
    assert doc["version"] == 1
    assert doc["env"] == "prod"
    assert doc["exit_code"] == 1
    assert doc["summary"] == {"ok": 1, "warn": 1, "fail": 1, "skip": 1}
    failed = doc["checks"][2]
    assert failed == {
        "id": "c.fail",
        "group": "c",
        "title": "c.fail",
        "status": "fail",
        "detail": "broken: password [redacted]\nsecond line",
        "fix": "fix it",
        "docs": "docs/x.md#y",
        "duration_ms": 1.0,
    }
