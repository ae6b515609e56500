"""`keel stack render` with real settings: the DB/Redis passwords come from the env's SOPS
file (made here with `keel secrets init`), and a bad settings file stops it with one report."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from stack_roots import make_root

from keel.cli import main


@pytest.fixture
def prod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_root(tmp_path)
    (root / "secrets" / "prod.yaml").unlink()
    key = tmp_path / "prod.agekey"
    assert main(["secrets", "init", "prod", "--root", str(root), "--key-file", str(key)]) == 0
    monkeypatch.setenv("KEEL_AGE_KEY_FILE", str(key))
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key))
    return root


def render(root: Path) -> int:
    return main(["stack", "render", "prod", "--root", str(root)])


def test_passwords_are_derived_from_the_sops_file_privately(
    prod: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render(prod) == 0
    out = capsys.readouterr()
    credentials = prod / ".stack" / "prod" / "credentials"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o700
    for name in ("db_password", "redis_password"):
        path = credentials / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o400
        value = path.read_text()
        assert len(value) >= 16
        assert value not in out.out + out.err
        assert value not in (prod / ".stack" / "prod" / "stack.yaml").read_text()
    assert main(["secrets", "show", "prod", "--root", str(prod), "--reveal"]) == 0
    shown = capsys.readouterr().out
    assert (credentials / "db_password").read_text() in shown


def test_a_wrong_settings_key_is_reported_with_its_file_and_line(
    prod: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app_env = prod / "configs" / "prod" / "app.env"
    app_env.write_text(app_env.read_text() + "DB_PASWORD_TYPO=x\n")
    assert render(prod) == 2
    err = capsys.readouterr().err
    assert "unknown key DB_PASWORD_TYPO" in err
    assert "app.env:" in err
    assert "Traceback" not in err
    assert not (prod / ".stack" / "prod" / "stack.yaml").exists()
