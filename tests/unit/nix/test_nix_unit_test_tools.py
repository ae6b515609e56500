"""Every external command the unit suite runs is available in the `unit-tests` flake check.

`checks.unit-tests` runs `pytest tests/unit` in the Nix build sandbox, where only declared
tools exist. The suite runs commands itself (subprocess calls in tests/unit) and through the
docs it executes (their `sh` blocks). Each command found must be provided by the sandbox
(nix/config.json `unitTestTools`, the dev venv, stdenv's base tools) or belong to a test that
skips without it, so a new `curl` in a doc fails here instead of on a Nix host.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

from nix_support import ROOT, nix_settings

# stdenv's default PATH in a Nix build: bash, coreutils, findutils, diffutils, sed, grep, gawk,
# gnutar, gzip, bzip2, xz, patch, file; plus shell keywords and builtins.
_STDENV_TOOLS = """bash sh cat cp mv rm mkdir rmdir ls ln chmod touch head tail wc sort uniq tr
cut tee env date sleep true false test printf echo basename dirname realpath mktemp find xargs
diff cmp sed grep awk gawk tar gzip"""
_SHELL_WORDS = """if then else elif fi for do done while case esac export set unset umask exit cd
read source . [ [[ trap wait local return"""
STDENV = set(_STDENV_TOOLS.split()) | set(_SHELL_WORDS.split())
# Console scripts of the dev venv (py.devVenv is on the sandbox PATH).
VENV = {"keel", "python", "python3", "pytest", "sops"}
# Used only by tests that skip, saying so, when the tool is absent (Docker, Nix, NVIDIA, make
# targets that start the Compose stack): not needed in the sandbox.
SKIPS_WITHOUT = {
    "docker": "the Compose/image tests (integration marker)",
    "docker-compose": "tests/unit/compose: the v1 CLI's config check",
    "nix": "docs/nix.md: a Nix host",
    "nix-instantiate": "tests/unit/nix: nix_instantiate() skips without it",
    "nvidia-smi": "tests/unit/gpu/test_gpu_real.py: an NVIDIA driver",
    "make": "docs' make targets start Docker stacks or the venv (outside the sandbox)",
    "uv": "docs' uv commands manage a venv (the sandbox has the Nix venv instead)",
    "promtool": "tests/unit/monitoring: Debian's prometheus package (.ci/run installs it)",
}
_BLOCK = re.compile(r"^```sh[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
_SUBPROCESS = re.compile(
    r"(?:subprocess\.(?:run|Popen|check_output|check_call)|which)\(\s*\[?\s*\"([\w.+-]+)\""
)
_SEPARATORS = {"|", "||", "&&", ";", "(", ")", "$", "$(", "then", "do", "else", "if", "while", "!"}


def commands_in_shell(script: str) -> Iterator[str]:
    script = script.replace("\\\n", " ").replace("$(", " $( ").replace(")", " ) ")
    for line in script.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError:  # an unbalanced quote inside a heredoc body: not a command line
            continue
        expect_command = True
        for token in tokens:
            if token in _SEPARATORS or token.endswith(("|", "&", ";")):
                expect_command = True
                continue
            if expect_command:
                if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", token):
                    continue  # VAR=value before the command
                yield token.rsplit("/", 1)[-1]
                expect_command = False


def external_commands() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for doc in sorted((ROOT / "docs").glob("*.md")):
        for block in _BLOCK.finditer(doc.read_text()):
            for command in commands_in_shell(block.group(1)):
                found.setdefault(command, set()).add(str(doc.relative_to(ROOT)))
    for test in sorted((ROOT / "tests" / "unit").rglob("*.py")):
        for match in _SUBPROCESS.finditer(test.read_text()):
            found.setdefault(match.group(1), set()).add(str(test.relative_to(ROOT)))
    return found


def test_the_scanner_finds_commands_in_pipelines_substitutions_and_conditions() -> None:
    script = (
        'X=1 curl -sf "$U" | grep -q ok && A=$(python3 -c "print(1)")\n'
        "if openssl rand 4; then\n  exit 1\nfi"
    )
    assert list(commands_in_shell(script)) == ["curl", "grep", "python3", "openssl", "exit", "fi"]


def test_every_external_command_of_the_unit_suite_is_in_the_sandbox() -> None:
    tools = set(nix_settings()["unitTestTools"])
    unknown = {
        command: sorted(where)
        for command, where in external_commands().items()
        if command not in tools | STDENV | VENV | set(SKIPS_WITHOUT) and not command.startswith("$")
    }
    assert not unknown, (
        "commands run by tests/unit or by the docs it executes, but not available in the "
        "checks.unit-tests sandbox: add them to unitTestTools in nix/config.json (a nixpkgs "
        f"attribute of the same name) or to a list in this test with the reason: {unknown}"
    )


def test_curl_and_openssl_the_auth_docs_need_are_declared() -> None:
    found = external_commands()
    tools = set(nix_settings()["unitTestTools"])
    for command in ("curl", "openssl"):
        assert "docs/auth.md" in found[command]
        assert command in tools
