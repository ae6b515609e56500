"""The key ring refuses keys that do not fit their algorithm (the confusion guards)."""

from __future__ import annotations

import json

import pytest
from _auth_material import PemPair, ring

from keel.auth.errors import AuthConfigError


def test_default_ring_signs_and_verifies_hs256_only(resolve) -> None:
    keys = ring(resolve)
    assert keys.allowed_algorithms == {"HS256"}
    assert keys.signing.kid == "k1"
    assert set(keys.verifying) == {"k1"}


def test_rsa_public_key_is_refused_as_an_hmac_secret(resolve, rsa_pem: PemPair) -> None:
    with pytest.raises(AuthConfigError, match=r"JWT_SECRET_KEY: HS256 needs an HMAC secret"):
        ring(resolve, secret_key=rsa_pem.public)
    verify = json.dumps({"old": {"alg": "HS256", "key": rsa_pem.public}})
    with pytest.raises(AuthConfigError, match=r"JWT_VERIFY_KEYS\['old'\].*asymmetric"):
        ring(resolve, verify_keys=verify)


def test_short_hmac_secret_is_refused(resolve) -> None:
    with pytest.raises(AuthConfigError, match="at least 32 bytes, got 10 bytes"):
        ring(resolve, secret_key="0123456789")


def test_ec_key_is_refused_for_rs256_and_wrong_curve_for_es256(
    resolve, rsa_pem: PemPair, ec_pem: PemPair
) -> None:
    with pytest.raises(AuthConfigError, match=r"RS256 needs an RSA key.*got an EC key"):
        ring(resolve, algorithm="RS256", private_key_pem=ec_pem.private)
    with pytest.raises(AuthConfigError, match=r"ES256 needs an EC key.*got an RSA key"):
        ring(resolve, algorithm="ES256", private_key_pem=rsa_pem.private)
    with pytest.raises(AuthConfigError, match="ES384 needs an EC key on curve secp384r1"):
        ring(resolve, algorithm="ES384", private_key_pem=ec_pem.private)


def test_signing_algorithm_must_be_allowed_and_supported(resolve) -> None:
    with pytest.raises(AuthConfigError, match="JWT_ALGORITHM: HS256 is not in JWT_ALLOWED"):
        ring(resolve, allowed_algorithms=["RS256"])
    with pytest.raises(AuthConfigError, match="'none' is not supported"):
        ring(resolve, algorithm="none")


def test_verify_keys_from_files_and_json_errors(resolve, tmp_path, rsa_pem: PemPair) -> None:
    (tmp_path / "old.pub").write_text(rsa_pem.public)
    verify = json.dumps({"rsa-old": {"alg": "RS256", "key_file": "old.pub"}})
    keys = ring(resolve, allowed_algorithms=["HS256", "RS256"], verify_keys=verify)
    assert keys.verifying["rsa-old"].algorithm == "RS256"
    with pytest.raises(AuthConfigError, match="not in JWT_ALLOWED_ALGORITHMS"):
        ring(resolve, verify_keys=verify)
    missing = json.dumps({"x": {"alg": "RS256", "key_file": "nope.pub"}})
    with pytest.raises(AuthConfigError, match=r"\['x'\]: cannot read key_file"):
        ring(resolve, allowed_algorithms=["HS256", "RS256"], verify_keys=missing)
    with pytest.raises(AuthConfigError, match="JWT_VERIFY_KEYS: expected a JSON object"):
        ring(resolve, verify_keys="not json")


def test_errors_never_contain_key_material(resolve, rsa_pem: PemPair) -> None:
    with pytest.raises(AuthConfigError) as info:
        ring(resolve, secret_key=rsa_pem.public)
    assert "BEGIN" not in str(info.value)
    short = "abcdefghij"
    with pytest.raises(AuthConfigError) as info:
        ring(resolve, secret_key=short)
    assert short not in str(info.value)
