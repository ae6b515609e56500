"""Conformance: real-sops fixtures from ../shared/sops/vectors (not copied into the repo)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keel.secrets import MacError, SopsError, UnsupportedRecipientError, decrypt_file
from keel.secrets.age_keys import Identities
from keel.secrets.model import to_plain

VECTORS = Path(__file__).resolve().parents[3].parent / "shared" / "sops" / "vectors"
_ENCRYPTED_KINDS = {"age", "age+pgp", "age-pq", "pgp"}


def _entries() -> list[dict[str, Any]]:
    if not (VECTORS / "manifest.json").is_file():
        return []
    manifest = json.loads((VECTORS / "manifest.json").read_text())
    return [e for e in manifest if e["kind"] in _ENCRYPTED_KINDS and e["format"] != "age-armor"]


pytestmark = pytest.mark.skipif(
    not (VECTORS / "manifest.json").is_file(),
    reason=f"conformance vectors not present at {VECTORS} (../shared/sops/vectors)",
)


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / "expected.json").read_text())
    return data


def _identities(entry: dict[str, Any]) -> Identities:
    found = Identities()
    for key in entry["keys"]:
        found.add_file(VECTORS / entry["source"] / key, key)
    return found


def _name(entry: dict[str, Any]) -> str:
    return f"{entry['source']}/{entry['dest']}"


@pytest.mark.parametrize("entry", _entries(), ids=_name)
def test_vector(entry: dict[str, Any], expected: dict[str, Any]) -> None:
    name = _name(entry)
    want = expected[name]
    path = VECTORS / entry["source"] / entry["dest"]
    if entry["kind"] == "pgp":
        # Keel reads age only: these exercise the format layer with the recorded data key,
        # and show the clear error a PGP-only file gets without it.
        with pytest.raises(UnsupportedRecipientError, match="Keel reads age recipients"):
            decrypt_file(path, identities=Identities(), fmt=entry["format"])
        options: dict[str, Any] = {"data_key": bytes.fromhex(want["data_key_hex"])}
    else:
        options = {"identities": _identities(entry)}
    if want["ref"] == "PASS":
        doc = decrypt_file(path, fmt=entry["format"], **options)
        assert [to_plain(branch) for branch in doc.branches] == want["plaintext"]
    elif entry["kind"] == "age-pq":
        with pytest.raises(UnsupportedRecipientError, match="unsupported recipient type"):
            decrypt_file(path, fmt=entry["format"], **options)
    else:
        assert entry["dest"].endswith("no_mac.yaml"), name
        with pytest.raises(MacError, match="no MAC") as info:
            decrypt_file(path, fmt=entry["format"], **options)
        assert str(path) in str(info.value)


def test_every_pass_vector_is_covered(expected: dict[str, Any]) -> None:
    names = {_name(e) for e in _entries()}
    assert {k for k, v in expected.items() if v["ref"] == "PASS"} <= names
    assert len(names) >= 60


def test_wrong_key_on_a_vector_names_recipients_and_sources(tmp_path: Path) -> None:
    entry = next(e for e in _entries() if e["kind"] == "age" and e["format"] == "yaml")
    key = tmp_path / "k.txt"
    from keel.secrets.age_keys import generate

    key.write_text(generate()[0] + "\n")
    found = Identities()
    found.add_file(key, "wrong key")
    with pytest.raises(SopsError, match=r"none of the 1 age identities.*wrong key.*age1"):
        decrypt_file(VECTORS / entry["source"] / entry["dest"], identities=found)


def test_sops_age_keysource_unit_vectors() -> None:
    """sops' own age unit vectors: X25519 and ssh-ed25519 identities unwrap the mock key."""
    from keel.secrets.age_keys import unwrap

    data = json.loads((VECTORS / "getsops-sops/age-unit/keysource_test_vectors.json").read_text())
    x25519 = Identities()
    x25519.add_text(data["mockIdentity"], "mockIdentity")
    assert unwrap(data["mockEncryptedKey"], x25519) == data["mockEncryptedKeyPlain"].encode()
    other = Identities()
    other.add_text(data["mockOtherIdentity"], "mockOtherIdentity")
    assert unwrap(data["mockEncryptedKey"], other) is None
    ssh = Identities()
    ssh.add_text(data["mockSshIdentity"], "mockSshIdentity")
    assert unwrap(data["mockEncryptedSshKey"], ssh) == data["mockEncryptedKeyPlain"].encode()


def test_encrypted_comments_come_back_in_place(expected: dict[str, Any]) -> None:
    """sops' functional-test file with encrypted comments prints as its plaintext source."""
    from keel.secrets.stores import emit_plain

    name = "getsops-sops/pgp/functional-tests/comments.enc.yaml"
    doc = decrypt_file(VECTORS / name, data_key=bytes.fromhex(expected[name]["data_key_hex"]))
    plain = VECTORS / "getsops-sops/plain/functional-tests/comments.yaml"
    assert emit_plain(doc.branches, "yaml").rstrip(b"\n") == plain.read_bytes().rstrip(b"\n")
