"""Where identities come from (the sops search order) and ssh-ed25519 recipients."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keel.secrets import KeyPlan, NoIdentityError, SopsError, decrypt_bytes, encrypt_bytes
from keel.secrets.age_keys import find_identities

PLAIN = b"token: t0k3n\n"


@pytest.fixture
def encrypted(age_key: Any) -> bytes:
    return encrypt_bytes(PLAIN, "yaml", plan=KeyPlan.single([age_key.recipient]))


def _opens(data: bytes, environ: dict[str, str]) -> bool:
    doc = decrypt_bytes(data, "yaml", identities=find_identities(environ))
    return bool(doc.tree()["token"] == "t0k3n")


def test_sops_age_key_inline(encrypted: bytes, age_key: Any) -> None:
    assert _opens(encrypted, {"HOME": "/nonexistent", "SOPS_AGE_KEY": age_key.identity})


def test_sops_age_key_file(encrypted: bytes, age_key: Any) -> None:
    assert _opens(encrypted, {"HOME": "/nonexistent", "SOPS_AGE_KEY_FILE": str(age_key.file)})


def test_missing_sops_age_key_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(NoIdentityError, match=f"SOPS_AGE_KEY_FILE={missing} does not exist"):
        find_identities({"HOME": "/nonexistent", "SOPS_AGE_KEY_FILE": str(missing)})


def test_default_key_file_under_xdg_config_home(
    encrypted: bytes, age_key: Any, tmp_path: Path
) -> None:
    keys = tmp_path / "sops" / "age" / "keys.txt"
    keys.parent.mkdir(parents=True)
    keys.write_text(f"# a comment\n\n{age_key.identity}\n")
    assert _opens(encrypted, {"HOME": "/nonexistent", "XDG_CONFIG_HOME": str(tmp_path)})


def test_sops_age_key_cmd(encrypted: bytes, age_key: Any) -> None:
    command = f"{sys.executable} -c 'print(\"{age_key.identity}\")'"
    assert _opens(encrypted, {"HOME": "/nonexistent", "SOPS_AGE_KEY_CMD": command})


def test_ssh_ed25519_recipient_both_ways(sops: Any, tmp_path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    key_file = tmp_path / "id_ed25519"
    key_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    recipient = public.decode()
    data = encrypt_bytes(PLAIN, "yaml", plan=KeyPlan.single([recipient]))
    environ = {"HOME": "/nonexistent", "SOPS_AGE_SSH_PRIVATE_KEY_FILE": str(key_file)}
    assert _opens(data, environ)
    path = tmp_path / "ssh.yaml"
    path.write_bytes(data)
    import os
    import subprocess

    binary = Path(sys.executable).parent / "sops"
    result = subprocess.run(
        [str(binary), "decrypt", str(path)],
        capture_output=True,
        check=False,
        env={**environ, "PATH": os.environ.get("PATH", ""), "SOPS_DISABLE_VERSION_CHECK": "1"},
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == PLAIN


def test_private_key_given_as_recipient_is_not_echoed(age_key: Any) -> None:
    with pytest.raises(SopsError, match="a private key was given as a recipient") as info:
        encrypt_bytes(PLAIN, "yaml", plan=KeyPlan.single([age_key.identity]))
    assert age_key.identity not in str(info.value)
    assert age_key.identity[15:] not in str(info.value)
