"""`keel secrets …` end to end in a temporary repository (real keys, real files)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.support import REPO

from keel.cli import main
from keel.secrets import decrypt_file
from keel.secrets.age_keys import Identities

EDITOR_SCRIPT = """
import os, sys
path = sys.argv[1]
text = open(path).read()
mode = os.environ["EDIT_MODE"]
if mode == "append":
    text += "EXTRA_TOKEN: added-by-editor\\n"
elif mode == "invalid_yaml":
    text += "broken: [\\n"
elif mode == "invalid_setting":
    text += "JWT_EXPIRE_MINUTES: not-a-number\\n"
elif mode == "fail":
    sys.exit(3)
open(path, "w").write(text)
open(os.environ["EDIT_SEEN"], "w").write(path)
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KEEL_ROOT", str(tmp_path))
    for name in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "XDG_CONFIG_HOME", "APP_ENV", "VISUAL"):
        monkeypatch.delenv(name, raising=False)
    script = tmp_path / "editor.py"
    script.write_text(EDITOR_SCRIPT)
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    monkeypatch.setenv("EDIT_SEEN", str(tmp_path / "seen"))
    return tmp_path


def _keel(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_init_dev_keeps_the_key_outside_the_repo(repo: Path, capsys: Any) -> None:
    code, out, _ = _keel(capsys, "secrets", "init", "dev")
    assert code == 0
    key = repo / "home" / ".config" / "keel" / "keys" / "dev.agekey"
    assert key.is_file()
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert not list((repo / "secrets").glob("keys/*"))
    config = (repo / ".sops.yaml").read_text()
    assert "secrets/dev\\.yaml" in config
    assert "AGE-SECRET-KEY" not in config
    doc = decrypt_file(repo / "secrets" / "dev.yaml", environ={"SOPS_AGE_KEY_FILE": str(key)})
    values = doc.tree()
    assert {"JWT_SECRET_KEY", "DB_PASSWORD", "REDIS_PASSWORD"} <= set(values)
    assert "DATABASE_URL" not in values
    assert "REDIS_URL" not in values
    assert len(values["JWT_SECRET_KEY"]) >= 32
    assert values["DB_PASSWORD"] != values["REDIS_PASSWORD"]
    assert f"SOPS_AGE_KEY_FILE={key}" in out
    # a second init refuses to clobber the file
    code, _, err = _keel(capsys, "secrets", "init", "dev")
    assert code == 1
    assert "already exists" in err


def test_show_masks_and_reveal_prints(repo: Path, capsys: Any) -> None:
    assert _keel(capsys, "secrets", "init", "test")[0] == 0
    assert (repo / "secrets" / "keys" / "test.agekey").is_file()
    code, out, _ = _keel(capsys, "secrets", "show", "test")
    assert code == 0
    assert "DB_PASSWORD=****(" in out
    code, revealed, _ = _keel(capsys, "secrets", "show", "test", "--reveal")
    secret = next(
        line.split("=", 1)[1] for line in revealed.splitlines() if line.startswith("DB_PASSWORD=")
    )
    assert len(secret) >= 32
    assert secret not in out


def test_set_unset_rotate_and_decrypt_json(repo: Path, capsys: Any) -> None:
    assert _keel(capsys, "secrets", "init", "test")[0] == 0
    path = repo / "secrets" / "test.yaml"
    before = path.read_text()
    assert _keel(capsys, "secrets", "set", "test", "EXTRA_TOKEN", "value-one")[0] == 1  # unknown
    assert _keel(capsys, "secrets", "set", "test", "DB_PASSWORD", "a-new-db-password-123")[0] == 0
    after = path.read_text()
    # only the changed value got new ciphertext
    unchanged = [line for line in before.splitlines() if line.startswith("REDIS_PASSWORD:")]
    assert unchanged
    assert unchanged[0] in after
    code, out, _ = _keel(capsys, "secrets", "decrypt", str(path), "--output-type", "json")
    assert code == 0
    assert json.loads(out)["DB_PASSWORD"] == "a-new-db-password-123"
    assert _keel(capsys, "secrets", "unset", "test", "API_KEY_ENCRYPTION_KEY")[0] == 0
    code, out, _ = _keel(capsys, "secrets", "decrypt", str(path), "--output-type", "json")
    assert "API_KEY_ENCRYPTION_KEY" not in json.loads(out)
    key = Identities()
    key.add_file(repo / "secrets" / "keys" / "test.agekey", "test key")
    old_key = decrypt_file(path, identities=key).data_key
    assert _keel(capsys, "secrets", "rotate", "test")[0] == 0
    rotated = decrypt_file(path, identities=key)
    assert rotated.data_key != old_key
    assert rotated.tree()["DB_PASSWORD"] == "a-new-db-password-123"


def test_set_reads_the_value_from_stdin(
    repo: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    assert _keel(capsys, "secrets", "init", "test")[0] == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("from-stdin-password-42\n"))
    assert _keel(capsys, "secrets", "set", "test", "REDIS_PASSWORD")[0] == 0
    _, out, _ = _keel(capsys, "secrets", "show", "test", "--reveal")
    assert "REDIS_PASSWORD=from-stdin-password-42" in out


def test_edit_validates_and_leaves_the_file_alone_on_error(
    repo: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _keel(capsys, "secrets", "init", "test")[0] == 0
    path = repo / "secrets" / "test.yaml"
    original = path.read_bytes()
    for mode, message in (
        ("invalid_yaml", "edited text is invalid"),
        ("invalid_setting", "JWT_EXPIRE_MINUTES"),
        ("append", "unknown key EXTRA_TOKEN"),
        ("fail", "exited with 3"),
    ):
        monkeypatch.setenv("EDIT_MODE", mode)
        code, _, err = _keel(capsys, "secrets", "edit", "test")
        assert code == 1, mode
        assert message in err
        assert "\n" not in err.strip()
        assert path.read_bytes() == original
    # the plaintext temp file is gone
    seen = Path((repo / "seen").read_text())
    assert not seen.exists()
    assert not seen.parent.exists()
    monkeypatch.setenv("EDIT_MODE", "none")
    code, out, _ = _keel(capsys, "secrets", "edit", "test")
    assert code == 0
    assert "no changes" in out


def test_edit_saves_a_valid_change(
    repo: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _keel(capsys, "secrets", "init", "test")[0] == 0
    script = repo / "editor2.py"
    script.write_text(
        "import sys\np = sys.argv[1]\nt = open(p).read()\n"
        "open(p, 'w').write(t + 'JWT_EXPIRE_MINUTES: 30\\n')\n"
    )
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    assert _keel(capsys, "secrets", "edit", "test")[0] == 0
    code, out, _ = _keel(capsys, "config", "show", "--env", "test", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["JWT_EXPIRE_MINUTES"]["value"] == "30"
    assert "secrets" in shown["JWT_EXPIRE_MINUTES"]["source"]
    assert shown["DB_PASSWORD"]["value"].startswith("****")


def test_updatekeys_adds_a_teammate(repo: Path, capsys: Any) -> None:
    assert _keel(capsys, "secrets", "init", "test")[0] == 0
    mate = repo / "mate.txt"
    assert _keel(capsys, "secrets", "keygen", "-o", str(mate))[0] == 0
    public = next(
        line.split(": ")[1] for line in mate.read_text().splitlines() if "public key" in line
    )
    config = repo / ".sops.yaml"
    text = config.read_text()
    config.write_text(text.replace("    age: ", f"    age: {public},", 1))
    code, out, _ = _keel(capsys, "secrets", "updatekeys", "test")
    assert code == 0
    assert f"+ {public}" in out
    doc = decrypt_file(repo / "secrets" / "test.yaml", environ={"SOPS_AGE_KEY_FILE": str(mate)})
    assert "DB_PASSWORD" in doc.tree()


def test_encrypt_uses_the_creation_rule_and_flags(
    repo: Path, capsys: Any, sops: Any, age_key: Any
) -> None:
    plain = repo / "app.yaml"
    plain.write_text("token: abc\nport_unencrypted: 1\n")
    code, _, err = _keel(capsys, "secrets", "encrypt", str(plain))
    assert code == 1
    assert ".sops.yaml" in err
    (repo / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: app\\.yaml$\n    age: {age_key.recipient}\n"
        "    encrypted_regex: ^token$\n"
    )
    code, out, _ = _keel(capsys, "secrets", "encrypt", str(plain))
    assert code == 0
    assert "encrypted_regex: ^token$" in out
    encrypted = repo / "app.enc.yaml"
    encrypted.write_text(out)
    result = sops("decrypt", "--output-type", "json", str(encrypted), key=age_key)
    code, ours, _ = _keel(
        capsys, "secrets", "decrypt", str(encrypted), "--output-type", "json",
        "--identity", str(age_key.file),
    )  # fmt: skip
    assert code == 0
    assert ours == result.stdout.decode()
    code, out, _ = _keel(
        capsys, "secrets", "encrypt", str(plain), "--age", age_key.recipient,
        "--unencrypted-suffix", "_plain", "--encrypted-regex", "x",
    )  # fmt: skip
    assert code == 1


def test_decrypt_without_a_key_names_the_fix(repo: Path, capsys: Any) -> None:
    assert _keel(capsys, "secrets", "init", "dev")[0] == 0
    shutil.rmtree(repo / "home" / ".config")
    code, _, err = _keel(capsys, "secrets", "show", "dev")
    assert code == 1
    assert "dev.yaml" in err
    assert "no age identity found" in err


def test_decrypt_extract_prints_what_sops_prints(
    tmp_path: Path, sops: Any, age_key: Any, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    source = tmp_path / "x.yaml"
    source.write_text("a:\n    b: hello\n    n: 42\n    t: true\n    l: [1, x]\ns: top\n")
    encrypted = tmp_path / "x.enc.yaml"
    encrypted.write_bytes(
        sops("--config", "/dev/null", "encrypt", "--age", age_key.recipient, str(source)).stdout
    )
    selectors = ['["s"]', '["a"]["n"]', '["a"]["t"]', '["a"]', '["a"]["l"]', '["a"]["l"][1]']
    for selector in selectors:
        for extra in ([], ["--output-type", "json"]):
            want = sops("decrypt", "--extract", selector, *extra, str(encrypted), key=age_key)
            code = main(
                ["secrets", "decrypt", "--identity", str(age_key.file), "--extract", selector,
                 *extra, str(encrypted)]
            )  # fmt: skip
            assert code == 0
            assert capsysbinary.readouterr().out == want.stdout, (selector, extra)
    code = main(["secrets", "decrypt", "--identity", str(age_key.file), "--extract", '["zz"]',
                 str(encrypted)])  # fmt: skip
    assert code == 1
    assert b'["zz"] not found' in capsysbinary.readouterr().err
