"""`keel secrets init ENV` in a clone whose .sops.yaml already has a rule for ENV.

The committed .sops.yaml names the maintainers' dev key. A newcomer's init must not quietly
encrypt their new secrets to it as well: it refuses and says what each flag does.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from keel.cli import main
from keel.secrets import decrypt_file
from keel.secrets.sops_config import recipients_in

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    shutil.copy(REPO / ".sops.yaml", tmp_path / ".sops.yaml")
    (tmp_path / "secrets").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KEEL_ROOT", str(tmp_path))
    for name in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "XDG_CONFIG_HOME", "APP_ENV"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _init(capsys: Any, *flags: str) -> tuple[int, str, str]:
    code = main(["secrets", "init", "dev", *flags])
    out = capsys.readouterr()
    return code, out.out, out.err


def _own_key(clone: Path) -> Path:
    return clone / "home" / ".config" / "keel" / "keys" / "dev.agekey"


def test_refuses_and_explains_without_touching_anything(clone: Path, capsys: Any) -> None:
    before = (clone / ".sops.yaml").read_text()
    code, _, err = _init(capsys)
    assert code == 1
    assert "already has a rule for secrets/dev.yaml" in err
    assert "--replace-rule" in err
    assert "--add-recipient" in err
    assert (clone / ".sops.yaml").read_text() == before
    assert not (clone / "secrets" / "dev.yaml").exists()
    assert not _own_key(clone).exists()  # no key left behind either


def test_replace_rule_names_only_the_new_key(clone: Path, capsys: Any) -> None:
    maintainers = recipients_in(clone / ".sops.yaml", "dev")
    code, out, _ = _init(capsys, "--replace-rule")
    assert code == 0
    mine = recipients_in(clone / ".sops.yaml", "dev")
    assert len(mine) == 1
    assert mine[0] not in maintainers
    assert "names only your key" in out
    # The other envs' rules are kept.
    assert recipients_in(clone / ".sops.yaml", "test") == recipients_in(REPO / ".sops.yaml", "test")
    doc = decrypt_file(
        clone / "secrets" / "dev.yaml", environ={"SOPS_AGE_KEY_FILE": str(_own_key(clone))}
    )
    assert doc.metadata.recipients == mine


def test_add_recipient_encrypts_to_both(clone: Path, capsys: Any) -> None:
    maintainers = recipients_in(clone / ".sops.yaml", "dev")
    code, _, _ = _init(capsys, "--add-recipient")
    assert code == 0
    assert recipients_in(clone / ".sops.yaml", "dev")[: len(maintainers)] == maintainers
    assert len(recipients_in(clone / ".sops.yaml", "dev")) == len(maintainers) + 1


def test_a_rule_that_already_names_your_key_needs_no_flag(clone: Path, capsys: Any) -> None:
    assert _init(capsys, "--replace-rule")[0] == 0
    (clone / "secrets" / "dev.yaml").unlink()
    assert _init(capsys)[0] == 0
