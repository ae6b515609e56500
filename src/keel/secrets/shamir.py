"""Shamir's secret sharing over GF(2^8) as sops (HashiCorp Vault's ``shamir``) does it.

A share is the y-bytes followed by one x-coordinate byte (1…255). Used for ``key_groups``.
"""

from __future__ import annotations

import secrets

_EXP = [0] * 512
_LOG = [0] * 256


def _init_tables() -> None:
    value = 1
    for power in range(255):
        _EXP[power] = value
        _LOG[value] = power
        # multiply by the generator 3 in GF(2^8) with the AES polynomial 0x11B
        value ^= (value << 1) ^ (0x11B if value & 0x80 else 0)
        value &= 0xFF
    for power in range(255, 512):
        _EXP[power] = _EXP[power - 255]


_init_tables()


def _mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _div(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError("division by zero in GF(2^8)")
    if a == 0:
        return 0
    return _EXP[(_LOG[a] - _LOG[b]) % 255]


def split(secret: bytes, parts: int, threshold: int) -> list[bytes]:
    """``parts`` shares, any ``threshold`` of which rebuild ``secret``; x = 1…parts."""
    if not 2 <= threshold <= parts <= 255:
        raise ValueError("need 2 <= threshold <= parts <= 255")
    shares = [bytearray() for _ in range(parts)]
    for byte in secret:
        coefficients = [byte] + [secrets.randbelow(256) for _ in range(threshold - 1)]
        for index in range(parts):
            x = index + 1
            y = 0
            for coefficient in reversed(coefficients):
                y = _mul(y, x) ^ coefficient
            shares[index].append(y)
    return [bytes(share) + bytes([index + 1]) for index, share in enumerate(shares)]


def combine(shares: list[bytes]) -> bytes:
    """The secret from ``threshold`` or more shares (Lagrange interpolation at x = 0)."""
    if len(shares) < 2:
        raise ValueError("at least two shares are needed")
    length = len(shares[0])
    if any(len(share) != length for share in shares) or length < 2:
        raise ValueError("shares differ in length")
    xs = [share[-1] for share in shares]
    if len(set(xs)) != len(xs):
        raise ValueError("duplicate shares")
    secret = bytearray()
    for position in range(length - 1):
        value = 0
        for i, share in enumerate(shares):
            basis = 1
            for j, other in enumerate(xs):
                if i != j:
                    basis = _mul(basis, _div(other, xs[i] ^ other))
            value ^= _mul(share[position], basis)
        secret.append(value)
    return bytes(secret)
