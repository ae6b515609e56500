"""The JWT key ring: one signing key, several verifying keys, each bound to one algorithm.

python-jose verifies with whatever algorithm a token names unless told otherwise, and a PEM
public key handed to it as a string can end up used as an HMAC secret (algorithm confusion).
Keel never hands it strings: every key is loaded here into a typed python-jose key object whose
family is checked against its algorithm (HMAC secret for HS*, RSA key >= 2048 bits for RS*, EC
key on the matching curve for ES*), and each ``kid`` verifies with exactly one algorithm.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_pem_public_key,
)
from jose.backends.base import Key
from jose.backends.cryptography_backend import (
    CryptographyECKey,
    CryptographyHMACKey,
    CryptographyRSAKey,
)

from keel.auth.errors import AuthConfigError

# HS*: minimum secret length in bytes = the hash size (RFC 7518 section 3.2).
HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512"})
RSA_MIN_BITS = 2048
EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}
SUPPORTED_ALGORITHMS = frozenset(HMAC_MIN_BYTES) | RSA_ALGORITHMS | frozenset(EC_CURVES)
_ASYMMETRIC_MARKERS = (b"-----BEGIN", b"ssh-", b"ecdsa-sha2-")


@dataclass(frozen=True, slots=True)
class JwtKey:
    kid: str
    algorithm: str
    verifier: Key
    # Only the current signing key has one.
    signer: Key | None = None


@dataclass(frozen=True, slots=True)
class KeyRing:
    signing: JwtKey
    verifying: Mapping[str, JwtKey]
    allowed_algorithms: frozenset[str]

    def for_kid(self, kid: str) -> JwtKey | None:
        return self.verifying.get(kid)


def _family_error(where: str, algorithm: str, got: str) -> AuthConfigError:
    return AuthConfigError(f"{where}: {algorithm} needs {_expected(algorithm)}, got {got}")


def _expected(algorithm: str) -> str:
    if algorithm in HMAC_MIN_BYTES:
        return f"an HMAC secret of at least {HMAC_MIN_BYTES[algorithm]} bytes"
    if algorithm in RSA_ALGORITHMS:
        return f"an RSA key of at least {RSA_MIN_BITS} bits"
    return f"an EC key on curve {EC_CURVES[algorithm].name}"


def _check_algorithm(where: str, algorithm: str) -> None:
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise AuthConfigError(
            f"{where}: algorithm {algorithm!r} is not supported; "
            f"use one of {', '.join(sorted(SUPPORTED_ALGORITHMS))}"
        )


def hmac_key(where: str, algorithm: str, secret: bytes) -> Key:
    """An HMAC key; refuses anything that looks like an asymmetric key (confusion guard)."""
    stripped = secret.strip()
    if any(stripped.startswith(marker) for marker in _ASYMMETRIC_MARKERS):
        raise _family_error(where, algorithm, "an asymmetric (PEM/SSH) key")
    if len(secret) < HMAC_MIN_BYTES[algorithm]:
        raise _family_error(where, algorithm, f"{len(secret)} bytes")
    return CryptographyHMACKey(secret, algorithm)


def _describe_key(key: object) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return f"an RSA key of {key.key_size} bits"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return f"an EC key on curve {key.curve.name}"
    return f"a {type(key).__name__.lstrip('_')}"


def _asymmetric(where: str, algorithm: str, key: Any) -> Key:
    """Wrap a loaded cryptography key after checking it fits ``algorithm``."""
    if algorithm in RSA_ALGORITHMS:
        if not isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
            raise _family_error(where, algorithm, _describe_key(key))
        if key.key_size < RSA_MIN_BITS:
            raise _family_error(where, algorithm, _describe_key(key))
        return CryptographyRSAKey(key, algorithm)
    curve = EC_CURVES[algorithm]
    if not isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) or not (
        isinstance(key.curve, curve)
    ):
        raise _family_error(where, algorithm, _describe_key(key))
    return CryptographyECKey(key, algorithm)


def private_key(where: str, algorithm: str, pem: bytes) -> tuple[Key, Key]:
    """(signer, verifier) from a PEM private key for an RS*/ES* algorithm."""
    try:
        loaded = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise AuthConfigError(
            f"{where}: not an unencrypted PEM private key ({type(exc).__name__})"
        ) from None
    signer = _asymmetric(where, algorithm, loaded)
    return signer, _asymmetric(where, algorithm, loaded.public_key())


def public_key(where: str, algorithm: str, pem: bytes) -> Key:
    try:
        loaded = load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise AuthConfigError(f"{where}: not a PEM public key ({type(exc).__name__})") from None
    return _asymmetric(where, algorithm, loaded)


def verifying_key(where: str, algorithm: str, material: bytes) -> Key:
    """A verify-only key: the HMAC secret for HS*, a PEM public key for RS*/ES*."""
    _check_algorithm(where, algorithm)
    if algorithm in HMAC_MIN_BYTES:
        return hmac_key(where, algorithm, material)
    return public_key(where, algorithm, material)


class _VerifyKeySpec(msgspec.Struct, forbid_unknown_fields=True):
    alg: str
    key: str = ""
    key_file: str = ""


def parse_verify_keys(
    text: str, resolve_path: Callable[[str], Path]
) -> dict[str, tuple[str, bytes]]:
    """``JWT_VERIFY_KEYS`` JSON -> {kid: (algorithm, key material)}."""
    if not text.strip():
        return {}
    try:
        specs = msgspec.json.decode(text, type=dict[str, _VerifyKeySpec])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        # msgspec's message names the path ($.kid.field), never the value.
        raise AuthConfigError(
            'JWT_VERIFY_KEYS: expected a JSON object {"<kid>": {"alg": "HS256", "key": "..."}} '
            f'or {{"<kid>": {{"alg": "RS256", "key_file": "path.pem"}}}}: {exc}'
        ) from None
    result: dict[str, tuple[str, bytes]] = {}
    for kid, spec in specs.items():
        where = f"JWT_VERIFY_KEYS[{kid!r}]"
        if bool(spec.key) == bool(spec.key_file):
            raise AuthConfigError(f"{where}: give exactly one of 'key' or 'key_file'")
        if spec.key_file:
            path = resolve_path(spec.key_file)
            try:
                material = path.read_bytes()
            except OSError as exc:
                raise AuthConfigError(
                    f"{where}: cannot read key_file {str(path)!r}: {exc.strerror or exc}"
                ) from None
        else:
            material = spec.key.encode()
        result[kid] = (spec.alg, material)
    return result


def build_key_ring(
    *,
    algorithm: str,
    allowed_algorithms: list[str],
    signing_key_id: str,
    secret_key: str,
    private_key_pem: str,
    verify_keys: str,
    resolve_path: Callable[[str], Path],
) -> KeyRing:
    """Load and check every key; raises :class:`AuthConfigError` naming the setting at fault."""
    _check_algorithm("JWT_ALGORITHM", algorithm)
    allowed = frozenset(allowed_algorithms or [algorithm])
    for name in allowed:
        _check_algorithm("JWT_ALLOWED_ALGORITHMS", name)
    if algorithm not in allowed:
        raise AuthConfigError(
            f"JWT_ALGORITHM: {algorithm} is not in JWT_ALLOWED_ALGORITHMS "
            f"({', '.join(sorted(allowed))})"
        )
    if not signing_key_id:
        raise AuthConfigError("JWT_SIGNING_KEY_ID: must not be empty")

    if algorithm in HMAC_MIN_BYTES:
        if not secret_key:
            raise AuthConfigError(f"JWT_SECRET_KEY: required for {algorithm}")
        signer = hmac_key("JWT_SECRET_KEY", algorithm, secret_key.encode())
        signing = JwtKey(signing_key_id, algorithm, verifier=signer, signer=signer)
    else:
        if not private_key_pem:
            raise AuthConfigError(
                f"JWT_PRIVATE_KEY: required for {algorithm} "
                "(set JWT_PRIVATE_KEY_FILE to a PEM file)"
            )
        signer, verifier = private_key("JWT_PRIVATE_KEY", algorithm, private_key_pem.encode())
        signing = JwtKey(signing_key_id, algorithm, verifier=verifier, signer=signer)

    verifying: dict[str, JwtKey] = {signing.kid: signing}
    for kid, (alg, material) in parse_verify_keys(verify_keys, resolve_path).items():
        where = f"JWT_VERIFY_KEYS[{kid!r}]"
        if kid == signing_key_id:
            raise AuthConfigError(f"{where}: kid is the signing key's JWT_SIGNING_KEY_ID")
        if alg not in allowed:
            raise AuthConfigError(
                f"{where}: algorithm {alg} is not in JWT_ALLOWED_ALGORITHMS "
                f"({', '.join(sorted(allowed))}); tokens signed with it would never verify"
            )
        verifying[kid] = JwtKey(kid, alg, verifier=verifying_key(where, alg, material))
    return KeyRing(signing=signing, verifying=verifying, allowed_algorithms=allowed)
