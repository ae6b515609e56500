"""`keel doctor` against real PostgreSQL and Redis, in a copy of the repository's config.

Each test gets its own root (configs/, secrets/, .sops.yaml copied) so it can break exactly one
thing: delete a file, swap a key, add a recipient. Doctor runs in-process through
``keel.cli.main`` (the real command line) with the environment a deployment would give it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keel.cli import main
from tests.service.conftest import REPO

# Environment names the doctor reads; anything inherited from the shell is dropped first.
_OURS = ("APP_", "DB_", "REDIS_", "WORKER_", "SOPS_", "KEEL_", "LOG_", "GPU_", "HTTP_", "JWT_")


@dataclass
class Report:
    code: int
    text: str
    doc: dict[str, Any]

    def entry(self, check_id: str) -> dict[str, Any]:
        return next(c for c in self.doc["checks"] if c["id"] == check_id)

    def line(self, check_id: str) -> str:
        return next(line for line in self.text.splitlines() if f" {check_id} " in line)

    def block(self, check_id: str) -> str:
        """The check's line and the indented lines under it (fix, docs)."""
        lines = self.text.splitlines()
        start = lines.index(self.line(check_id))
        end = start + 1
        while end < len(lines) and lines[end].startswith("    "):
            end += 1
        return "\n".join(lines[start:end])


def _test_file_secrets() -> list[str]:
    """Every value of the committed secrets/test.yaml: none may ever appear in a report."""
    from keel.config.secrets_layer import read_env_secrets
    from keel.secrets.metadata import flatten

    tree = read_env_secrets(REPO / "secrets" / "test.yaml", environ={}, env="test")
    return [v for v in flatten(tree).values() if len(v) >= 6]


@pytest.fixture
def doctor_root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "configs", root / "configs")
    shutil.copytree(REPO / "secrets", root / "secrets")
    shutil.copy(REPO / ".sops.yaml", root / ".sops.yaml")
    return root


@pytest.fixture
def run_doctor(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Callable[..., Report]:
    secrets_seen: list[str] = []

    def run(env: dict[str, str], *args: str, secrets: tuple[str, ...] = ()) -> Report:
        for name in list(os.environ):
            if name.startswith(_OURS) or name in {"DATABASE_URL", "CORS_ORIGINS", "DEBUG"}:
                monkeypatch.delenv(name)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(["doctor", *args])
        text = capsys.readouterr().out
        json_code = main(["doctor", "--json", *args])
        doc = json.loads(capsys.readouterr().out)
        assert json_code == code == doc["exit_code"]
        secrets_seen.extend([*secrets, *_test_file_secrets()])
        for secret in {*secrets_seen, *(v for k, v in env.items() if "PASSWORD" in k and v)}:
            assert secret not in text, f"secret {secret[:2]}… printed"
            assert secret not in json.dumps(doc)
        return Report(code, text, doc)

    return run
