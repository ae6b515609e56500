"""Every `keel secrets` and `make secrets-*` command in docs/secrets.md exists as written."""

from __future__ import annotations

import re
import shlex

from tests.support import REPO

from keel.cli import build_parser

DOC = REPO / "docs" / "secrets.md"


def _commands(prefix: str) -> list[str]:
    """Every ``prefix sub …`` in the text, up to a backquote, comment or line end."""
    pattern = re.compile(rf"({re.escape(prefix)} [a-z][^`\n#)]*)")
    return [match.group(1).strip() for match in pattern.finditer(DOC.read_text())]


def test_documented_keel_commands_parse() -> None:
    parser = build_parser()
    commands = _commands("keel secrets")
    assert len(commands) >= 10
    for command in commands:
        argv = shlex.split(command)[1:]
        args = parser.parse_args(argv)
        assert callable(args.handler), command


def test_documented_make_targets_exist() -> None:
    makefile = (REPO / "Makefile").read_text()
    for command in _commands("make"):
        target = command.split()[1]
        assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), target
