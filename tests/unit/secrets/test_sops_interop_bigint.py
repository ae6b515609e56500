"""JSON numbers beyond 2**53 against the real sops, which reads every JSON number as float64.

An unencrypted integer the float cannot hold exactly is hashed by sops as the rounded float;
Keel must compute that same MAC, or sops refuses the file Keel wrote ("MAC mismatch").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from keel.secrets import KeyPlan, Rule, decrypt_bytes, encrypt_bytes
from keel.secrets.stores import emit_plain

BIG = (
    b'{"big_unencrypted": 12345678901234567891, "odd_unencrypted": 9007199254740993, '
    b'"neg_unencrypted": -9007199254740993, "exact_unencrypted": 9007199254740992, '
    b'"secret_big": 12345678901234567891, "secret": "s", "small": 7}'
)


@pytest.mark.parametrize("mac_only", [False, True])
def test_keel_writes_big_integers_sops_verifies(
    sops: Any, age_key: Any, tmp_path: Path, mac_only: bool
) -> None:
    encrypted = encrypt_bytes(
        BIG, "json", plan=KeyPlan.single([age_key.recipient]),
        rule=Rule("unencrypted_suffix", "_unencrypted"), mac_only_encrypted=mac_only,
    )  # fmt: skip
    path = tmp_path / "big.json"
    path.write_bytes(encrypted)
    result = sops("decrypt", str(path), key=age_key, check=False)
    assert result.returncode == 0, result.stderr.decode()  # the MAC sops computes matches
    ours = decrypt_bytes(encrypted, "json", identities=age_key.identities())
    assert emit_plain(ours.branches, "json") == result.stdout
    assert b'"big_unencrypted": 12345678901234567000' in result.stdout
    assert b'"exact_unencrypted": 9007199254740992' in result.stdout


def test_sops_writes_big_integers_keel_reads_the_same(
    sops: Any, age_key: Any, tmp_path: Path
) -> None:
    source = tmp_path / "plain.json"
    source.write_bytes(BIG)
    written = sops("--config", "/dev/null", "encrypt", "--age", age_key.recipient,
                   "--unencrypted-suffix", "_unencrypted", str(source)).stdout  # fmt: skip
    ours = decrypt_bytes(written, "json", identities=age_key.identities())
    (tmp_path / "enc.json").write_bytes(written)
    assert (
        emit_plain(ours.branches, "json")
        == sops("decrypt", str(tmp_path / "enc.json"), key=age_key).stdout
    )
