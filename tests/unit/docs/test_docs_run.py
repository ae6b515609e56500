"""Every shell block of every doc runs exactly as written, in order, on a clean copy.

The copy holds what `git clone` would give (tracked and not-ignored files, no .venv, no var/)
plus a venv made the way the README says (`make venv`). Nothing is put on PATH: the commands
must work as a reader types them (`uv run keel …`). HOME is a fresh folder, so keys the docs
create land there, not in the developer's home.

A block's info string says what it needs:

- ```` ```sh ````: runs here, in the doc's one shell session (``set -euo pipefail``).
- ```` ```sh ctrl-c ````: each line runs until it is interrupted (a server, ``--watch``); it must
  still be running when Ctrl-C comes (after 3 s, or once ``/health/live`` answers with
  ``wait=health``), then the next line runs.
- ```` ```sh needs=docker|nix|gpu|redis|self|network|remote ````: what this machine or this
  suite cannot give
  (``self``: `make test`, the suite itself); skipped with that reason, its ``keel`` commands still
  parse and its ``make`` targets exist.

Afterwards the copy has no new untracked file: whatever the docs write is either in a temporary
folder or covered by .gitignore.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from keel.cli import build_parser

REPO = Path(__file__).resolve().parents[3]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
SHELL_KINDS = {"sh", "bash", "shell", "console"}
NEEDS = {
    "docker": "needs Docker and the images (the integration suite runs the stack)",
    "nix": "needs a Nix that can build (this machine only evaluates)",
    "gpu": "needs an NVIDIA GPU and driver",
    "redis": "needs Redis and PostgreSQL (tests/service/test_docs_workers.py runs it with both)",
    "self": "is the test suite itself",
    "network": "downloads a tool from PyPI",
    "remote": "needs a second host (e.g. where off-host backup copies go)",
}


# What a reader sees when a doc's commands did their job (beyond exiting 0).
EXPECT = {
    "auth.md": [
        '"username":"alice"',  # /api/users/me with the access token (curl: compact JSON)
        '"roles":["admin"]',
        '{"kind": "service", "name": "reporting", "roles": []}',  # whoami with a signature
        '"payload": {"hello": "world"}',  # the job read back
        '{"kind": "service", "name": "reporting-2026-12", "roles": []}',  # the new key worked
    ],
    "secrets.md": ["Public key: age1", "JWT_SECRET_KEY"],
    "gpu.md": ["H100"],
}
# Files a doc means you to commit (it says so); anything else it leaves must be ignored.
INTENDED = {"secrets.md": {"secrets/dev.yaml"}}


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    body: str
    options: dict[str, str]

    @property
    def needs(self) -> list[str]:
        return [n for n in self.options.get("needs", "").split("|") if n]


def _options(info: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for word in info.split():
        name, _, value = word.partition("=")
        out[name] = value
    return out


def doc_blocks(doc: Path) -> list[Block]:
    """Shell blocks, and blocks to save as a file (``file=PATH``: "save it as …")."""
    text = doc.read_text()
    blocks = []
    for match in _FENCE.finditer(text):
        kind, info, body = match.group(1), match.group(2), match.group(3)
        options = _options(info)
        if kind in SHELL_KINDS or "file" in options:
            line = text.count("\n", 0, match.start()) + 1
            blocks.append(Block(doc.name, line, body, {"kind": kind, **options}))
    return blocks


def shell_blocks(doc: Path) -> list[Block]:
    return [b for b in doc_blocks(doc) if b.options["kind"] in SHELL_KINDS]


def _commands(body: str) -> list[str]:
    """The block's commands: comments stripped, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", body)
    lines = [re.sub(r"(^|\s)#\s.*$", "", line).strip() for line in joined.splitlines()]
    return [line for line in lines if line]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def clean_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a clone holds, with the venv `make venv` makes (uv, from its cache)."""
    root = tmp_path_factory.mktemp("clone") / "keel"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(
        ["uv", "sync", "--frozen", "--offline", "--quiet"], cwd=root, check=True, timeout=300
    )
    return root


# A reader's editor: saves the file with one comment line added (an unchanged save makes
# `sops edit` exit 200, "file has not changed").
EDITOR_SCRIPT = "#!/bin/sh\nprintf '# reviewed\\n' >> \"$1\"\n"


def reader_env(home: Path, port: int) -> dict[str, str]:
    """A reader's shell: their PATH (with uv), a fresh HOME, no Keel settings of ours."""
    editor = home / "edit-and-save"
    editor.write_text(EDITOR_SCRIPT)
    editor.chmod(0o755)
    keep = {"PATH", "LANG", "LC_ALL", "TERM", "TMPDIR", "UV_CACHE_DIR", "UV_PYTHON_DOWNLOADS"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        HOME=str(home),
        UV_CACHE_DIR=os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv")),
        EDITOR=str(editor),
        HTTP_PORT=str(port),  # the documented way to move off 8000 (shared machine)
        KEEL_URL=f"http://127.0.0.1:{port}",
        # The key rotation example waits out the API key cache; keep that wait short.
        API_KEY_CACHE_SECONDS="1",
    )
    return env


HELPERS = r"""
set -euo pipefail
set -m  # background jobs in their own process group: Ctrl-C (SIGINT) reaches them
_until_ctrl_c() {  # _until_ctrl_c WAIT COMMAND: run COMMAND until "Ctrl-C"
  local wait="$1" cmd="$2" pid rc=0 waited=0
  echo "+ $cmd   # until Ctrl-C"
  bash -c "$cmd" &
  pid=$!
  if [ "$wait" = health ]; then
    until curl -sf "$KEEL_URL/health/live" >/dev/null 2>&1; do
      if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" || rc=$?; echo "exited early ($rc): $cmd"; return 1
      fi
      sleep 0.2; waited=$((waited + 1))
      [ "$waited" -lt 300 ] || { kill -INT -"$pid"; echo "not live after 60s: $cmd"; return 1; }
    done
  else
    sleep "$wait"
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" || rc=$?; echo "exited before Ctrl-C ($rc): $cmd"; return 1
  fi
  kill -INT -"$pid"
  wait "$pid" || true
}
"""


def script_for(blocks: list[Block]) -> str:
    parts = [HELPERS]
    for block in blocks:
        if block.needs:
            continue
        parts.append(f"echo '## {block.doc}:{block.line}'")
        if "file" in block.options:
            # "Save it as PATH": what a reader does with an editor.
            parts.append(f"cat > \"{block.options['file']}\" <<'KEEL_DOC_EOF'")
            parts.append(block.body + "KEEL_DOC_EOF")
        elif "ctrl-c" in block.options:
            wait = block.options.get("wait") or "3"
            parts.extend(
                f"_until_ctrl_c {shlex.quote(wait)} {shlex.quote(command)}"
                for command in _commands(block.body)
            )
        else:
            parts.append(block.body)
    return "\n".join(parts)


def _untracked(root: Path) -> list[str]:
    out = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=root, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [line[3:] for line in out.splitlines() if line.startswith("??")]


@pytest.fixture
def reader(clean_copy: Path, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    home = tmp_path / "home"
    home.mkdir()
    yield clean_copy, reader_env(home, _free_port())
    # Whatever a doc left running (a `make run` that was not interrupted) is stopped.
    subprocess.run(["git", "checkout", "-q", "--", "."], cwd=clean_copy, check=False)


def test_every_doc_has_shell_blocks_with_known_needs() -> None:
    for doc in DOCS:
        for block in shell_blocks(doc):
            unknown = set(block.needs) - set(NEEDS)
            assert not unknown, f"{doc.name}:{block.line}: unknown needs {unknown}"
            assert "keel " not in re.sub(r"uv run keel |\.venv/bin/keel ", "", block.body) or (
                block.needs
            ), f"{doc.name}:{block.line}: call keel as `uv run keel` (README: one way)"


@pytest.mark.parametrize("doc", [d for d in DOCS if shell_blocks(d)], ids=lambda d: d.name)
def test_doc_runs_as_written(doc: Path, reader: tuple[Path, dict[str, str]]) -> None:
    root, env = reader
    blocks = doc_blocks(doc)
    before = set(_untracked(root))
    runnable = [b for b in blocks if not b.needs]
    result = subprocess.CompletedProcess[str]([], 0, "", "")
    server = None
    if doc.name == "auth.md":
        # auth.md talks to a running API ("KEEL_URL is where the API listens"), as the README
        # starts it: `make run` in another terminal.
        server = subprocess.Popen(
            ["make", "run"], cwd=root, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        _wait_live(env["KEEL_URL"], server)
    try:
        if runnable:
            result = subprocess.run(
                ["bash", "-c", script_for(blocks)],
                cwd=root, env=env, capture_output=True, text=True, timeout=400,
                stdin=subprocess.DEVNULL, check=False,
            )  # fmt: skip
            assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGINT)
            server.wait(30)
    for expected in EXPECT.get(doc.name, []):
        assert expected in result.stdout + result.stderr, f"{doc.name}: no {expected!r} shown"
    left = sorted(set(_untracked(root)) - before - INTENDED.get(doc.name, set()))
    assert not left, f"{doc.name} leaves untracked files in the checkout: {left}"


NEEDY = [(d, b) for d in DOCS for b in shell_blocks(d) if b.needs]


@pytest.mark.parametrize(("doc", "block"), NEEDY, ids=[f"{d.name}:{b.line}" for d, b in NEEDY])
def test_block_that_needs_more_than_this_machine(doc: Path, block: Block) -> None:
    _check_names(block)  # its keel commands parse, its make targets exist
    pytest.skip(f"{doc.name}:{block.line} {' and '.join(NEEDS[n] for n in block.needs)}")


def _wait_live(url: str, server: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "make run exited"
        try:
            with urllib.request.urlopen(f"{url}/health/live", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"make run did not answer on {url} in {timeout}s")


def _check_names(block: Block) -> None:
    """A block that cannot run here still names only commands and targets that exist."""
    makefile = (REPO / "Makefile").read_text()
    parser = build_parser()
    for command in _commands(block.body):
        words = shlex.split(command)
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
            words.pop(0)
        if words[:3] == ["uv", "run", "keel"] and not {"--help", "--version"} & set(words):
            args = parser.parse_args(words[3:])
            assert callable(args.handler), command
        if words[:1] == ["make"]:
            for target in (w for w in words[1:] if "=" not in w and not w.startswith("-")):
                assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), command


_INLINE = re.compile(r"`((?:[A-Z_]+=\S+ )*(?:uv run keel|make) [^`]*)`")


def test_inline_commands_in_prose_and_tables_exist() -> None:
    """`uv run keel …` and `make …` quoted in running text parse / name real targets too."""
    seen = 0
    for doc in DOCS:
        for command in _INLINE.findall(doc.read_text()):
            words = command.split()
            if (
                "…" in command
                or "..." in command
                or "[" in command
                or any(re.fullmatch(r"[A-Z][A-Z_]*", word) or "|" in word for word in words)
            ):
                continue  # a pattern (`keel secrets set ENV KEY`), not a command
            _check_names(Block(doc.name, 0, command, {}))
            seen += 1
    assert seen >= 20
