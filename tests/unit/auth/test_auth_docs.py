"""docs/auth.md's shape; its commands run as written in tests/unit/docs/test_docs_run.py."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "auth.md"
_BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _blocks() -> list[tuple[str, str, str]]:
    return [(m.group(1), m.group(2).strip(), m.group(3)) for m in _BLOCK.finditer(DOC.read_text())]


def test_every_block_is_shell_python_or_config() -> None:
    kinds = {kind for kind, _, _ in _blocks()}
    assert kinds <= {"sh", "python", "yaml", "text"}, kinds
    assert any(info == "file=$WORK/keel_client.py" for _, info, _ in _blocks())


def test_files_with_secrets_go_to_the_temporary_folder() -> None:
    shell = "\n".join(body for kind, _, body in _blocks() if kind == "sh")
    for name in ("alice.pw", "tokens.json", "reporting-key.json", "new-key.json"):
        for use in re.findall(rf"\S*{re.escape(name)}", shell):
            assert use.lstrip("\"'>").startswith(("$WORK/", name)), use
    assert 'WORK="$(mktemp -d)"' in shell
