"""Altered files are refused with one clear line naming the file, and nothing is decrypted."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from keel.secrets import (
    ConfigRuleError,
    FormatError,
    KeyPlan,
    MacError,
    NoIdentityError,
    UnsupportedRecipientError,
    ValueDecryptError,
    decrypt_file,
    encrypt_bytes,
)
from keel.secrets.age_keys import Identities
from keel.secrets.sops_config import rule_for

PLAIN = b"DB_PASSWORD: first-value\nREDIS_PASSWORD: second-value\nport_unencrypted: 5432\n"


@pytest.fixture
def encrypted(tmp_path: Path, age_key: Any) -> Path:
    path = tmp_path / "secrets.yaml"
    path.write_bytes(encrypt_bytes(PLAIN, "yaml", plan=KeyPlan.single([age_key.recipient])))
    return path


def _flip_in_b64(text: str, field: str, line_prefix: str) -> str:
    """Flip one bit of the first byte of ``field`` (data/iv/tag) on the line."""
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.lstrip().startswith(line_prefix):
            match = re.search(field + r":([^,\]]+)", line)
            assert match
            raw = bytearray(base64.b64decode(match.group(1)))
            raw[0] ^= 0x01
            lines[index] = (
                line[: match.start(1)]
                + base64.b64encode(bytes(raw)).decode()
                + line[match.end(1) :]
            )
            return "".join(lines)
    raise AssertionError(line_prefix)


def _refused(path: Path, key: Any, error: type[Exception], pattern: str) -> str:
    with pytest.raises(error, match=pattern) as info:
        decrypt_file(path, identities=key.identities())
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    assert "first-value" not in message
    assert "second-value" not in message
    return message


def test_untouched_file_decrypts(encrypted: Path, age_key: Any) -> None:
    assert (
        decrypt_file(encrypted, identities=age_key.identities()).tree()["port_unencrypted"] == 5432
    )


def test_one_flipped_byte_in_a_value_is_refused(encrypted: Path, age_key: Any) -> None:
    encrypted.write_text(_flip_in_b64(encrypted.read_text(), "data", "DB_PASSWORD:"))
    _refused(encrypted, age_key, ValueDecryptError, "key DB_PASSWORD: value failed authentication")


def test_one_flipped_byte_in_the_mac_is_refused(encrypted: Path, age_key: Any) -> None:
    encrypted.write_text(_flip_in_b64(encrypted.read_text(), "data", "mac:"))
    _refused(encrypted, age_key, MacError, "MAC mismatch")


def test_changed_lastmodified_is_refused(encrypted: Path, age_key: Any) -> None:
    text = encrypted.read_text()
    stamp = re.search(r'lastmodified: "(\d{4})', text)
    assert stamp
    year = int(stamp.group(1))
    encrypted.write_text(text.replace(f'lastmodified: "{year}', f'lastmodified: "{year - 1}'))
    _refused(encrypted, age_key, MacError, "MAC mismatch")


def test_swapped_values_are_refused(encrypted: Path, age_key: Any) -> None:
    text = encrypted.read_text()
    first = re.search(r"DB_PASSWORD: (ENC\[.*\])", text)
    second = re.search(r"REDIS_PASSWORD: (ENC\[.*\])", text)
    assert first
    assert second
    swapped = (
        text.replace(first.group(1), "@@FIRST@@")
        .replace(second.group(1), first.group(1))
        .replace("@@FIRST@@", second.group(1))
    )
    encrypted.write_text(swapped)
    _refused(encrypted, age_key, ValueDecryptError, "failed authentication")


def test_changed_unencrypted_value_breaks_the_mac(encrypted: Path, age_key: Any) -> None:
    encrypted.write_text(
        encrypted.read_text().replace("port_unencrypted: 5432", "port_unencrypted: 5433")
    )
    _refused(encrypted, age_key, MacError, "MAC mismatch")


def test_removed_mac_is_refused(encrypted: Path, age_key: Any) -> None:
    text = re.sub(r"\n    mac: ENC\[[^\n]*", "", encrypted.read_text())
    encrypted.write_text(text)
    _refused(encrypted, age_key, MacError, "no MAC")


def test_malformed_enc_names_the_key_path(tmp_path: Path, age_key: Any) -> None:
    path = tmp_path / "nested.yaml"
    path.write_bytes(
        encrypt_bytes(b"db:\n    password: x\n", "yaml", plan=KeyPlan.single([age_key.recipient]))
    )
    path.write_text(
        re.sub(
            r"password: ENC\[AES256_GCM,data:", "password: ENC[AES256_GCM,dta:", path.read_text()
        )
    )
    _refused(path, age_key, ValueDecryptError, r"key db\.password: malformed ENC")


def test_unknown_type_is_refused(encrypted: Path, age_key: Any) -> None:
    text = encrypted.read_text()
    encrypted.write_text(text.replace("type:str]", "type:blob]", 1))
    _refused(encrypted, age_key, ValueDecryptError, "unknown value type 'blob'")


def test_altered_type_tag_does_not_echo_the_plaintext(encrypted: Path, age_key: Any) -> None:
    # The type tag is outside what GCM authenticates: the value decrypts, then fails to parse.
    text = encrypted.read_text()
    encrypted.write_text(text.replace("type:str]", "type:int]", 1))
    _refused(encrypted, age_key, ValueDecryptError, "key DB_PASSWORD: .* not a valid int")


def test_pgp_only_file_lists_what_it_has(encrypted: Path, age_key: Any) -> None:
    text = encrypted.read_text()
    start = text.index("    age:")
    end = text.index("    lastmodified:")
    pgp = "    pgp:\n        - fp: FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4\n          enc: x\n"
    encrypted.write_text(text[:start] + pgp + text[end:])
    message = _refused(encrypted, age_key, UnsupportedRecipientError, "Keel reads age recipients")
    assert "pgp:FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4" in message


def test_no_identity_lists_recipients_and_places_looked(encrypted: Path, age_key: Any) -> None:
    with pytest.raises(NoIdentityError) as info:
        decrypt_file(encrypted, environ={"HOME": "/nonexistent"})
    message = str(info.value)
    assert age_key.recipient[:16] in message
    assert "SOPS_AGE_KEY_FILE (unset)" in message
    assert "/nonexistent/.config/sops/age/keys.txt" in message


def test_not_a_sops_file(tmp_path: Path, age_key: Any) -> None:
    path = tmp_path / "plain.yaml"
    path.write_bytes(PLAIN)
    _refused(path, age_key, Exception, "not a sops-encrypted file")


def test_invalid_yaml_names_the_line(tmp_path: Path, age_key: Any) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: [unclosed\n")
    _refused(path, age_key, FormatError, "invalid YAML at line")


def test_no_creation_rule_for_the_path(tmp_path: Path) -> None:
    (tmp_path / ".sops.yaml").write_text(
        "creation_rules:\n  - path_regex: ^other\\.yaml$\n    age: age1x\n"
    )
    with pytest.raises(ConfigRuleError, match=r"no creation rule matches 'mine\.yaml'"):
        rule_for(tmp_path / "mine.yaml")


def test_empty_identity_set_reports_no_identity(encrypted: Path) -> None:
    with pytest.raises(NoIdentityError):
        decrypt_file(encrypted, identities=Identities())


def test_decrypted_document_repr_holds_no_plaintext(encrypted: Path, age_key: Any) -> None:
    doc = decrypt_file(encrypted, identities=age_key.identities())
    text = repr(doc)
    assert "first-value" not in text
    assert doc.data_key.hex() not in text
    assert repr(doc.data_key) not in text
