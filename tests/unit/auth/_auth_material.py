"""Key material and the key ring shared by the auth tests (imported by name; no fixtures here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keel.auth.keys import KeyRing, build_key_ring

HMAC_SECRET = "k" * 16 + "0123456789abcdef0123"


@dataclass(frozen=True)
class PemPair:
    private: str
    public: str


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> PemPair:
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return PemPair(private, public)


def make_rsa() -> PemPair:
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def make_ec() -> PemPair:
    return _pem(ec.generate_private_key(ec.SECP256R1()))


def ring(resolve: Callable[[str], Path], **overrides: Any) -> KeyRing:
    """A key ring from HS256 defaults (key id ``k1``, :data:`HMAC_SECRET`) with ``overrides``."""
    params: dict[str, Any] = {
        "algorithm": "HS256",
        "allowed_algorithms": [],
        "signing_key_id": "k1",
        "secret_key": HMAC_SECRET,
        "private_key_pem": "",
        "verify_keys": "",
        "resolve_path": resolve,
    }
    params.update(overrides)
    return build_key_ring(**params)
