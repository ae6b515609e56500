"""The files people expect in a repository like this one, and that they say true things."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from keel.cli import COMMAND_SUMMARIES, build_parser

REPO = Path(__file__).resolve().parents[3]


def test_license_is_the_full_apache_2_text_pyproject_names() -> None:
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert len(text.splitlines()) > 150
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "Apache-2.0"}


def test_contributing_names_commands_that_exist() -> None:
    text = (REPO / "CONTRIBUTING.md").read_text()
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", (REPO / "Makefile").read_text(), re.M))
    named = set(re.findall(r"`make ([a-z][a-z0-9-]*)", text))
    assert {"run", "dev", "test", "lint", "bench"} <= named
    assert named <= targets, named - targets
    assert "docs/architecture.md" in text


def test_changelog_has_an_unreleased_section() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    assert re.search(r"^## Unreleased$", text, re.M)
    assert re.search(r"^## 0\.1\.0$", text, re.M)


def _lint_lines() -> list[str]:
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    return [line.strip().replace("$(UV)", "uv") for line in recipe.splitlines()[1:] if line.strip()]


def test_pre_commit_runs_make_lint_from_local_tools_only() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]  # nothing fetched at commit
    hooks = config["repos"][0]["hooks"]
    assert all(hook["language"] == "system" for hook in hooks)
    assert [hook["entry"] for hook in hooks] == _lint_lines()
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_keel_help_summaries_match_what_the_commands_register() -> None:
    parser = build_parser()  # every module registered
    subparsers = next(a for a in parser._actions if a.dest == "command")
    registered = {
        choice.dest: choice.help
        for choice in subparsers._choices_actions  # type: ignore[attr-defined]
    }
    assert registered == COMMAND_SUMMARIES


def test_keel_help_imports_no_command_module() -> None:
    code = (
        "import sys; from keel.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('keel.') and 'command' in m"
        " or m.split('.')[0] in ('litestar', 'sqlalchemy', 'advanced_alchemy', 'taskiq')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_operator_commands_stay_off_the_web_framework_and_advanced_alchemy() -> None:
    code = (
        "import sys; from keel.cli import build_parser\n"
        "for argv in (['users', 'list'], ['apikeys', 'list'], ['migrate']):\n"
        "    build_parser(argv)\n"
        "import keel.commands.accounts, keel.domain.users.services, keel.db.migrate\n"
        "print(sorted(m for m in ('litestar', 'advanced_alchemy', 'taskiq') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
