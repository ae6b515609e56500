"""Authentication: JWT (python-jose, pinned algorithms), request signatures, rate limits.

Key material is secret (``SecretStr``); everything else is plain policy. Every number has a
declared range (``Meta(ge=..., le=...)``), checked by the loader with the other problems; what
prod refuses on top (huge windows and leeways) is in ``keel.config.guards``. ``*_FILE`` variants
(``JWT_PRIVATE_KEY_FILE=/run/secrets/jwt.pem``) read a key from a file, as for every setting.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from keel.config.types import SecretStr


class AuthSettings(msgspec.Struct, frozen=True, kw_only=True):
    # --- JWT: signing -------------------------------------------------------------------
    # The algorithm new tokens are signed with (HS256/384/512, RS256/384/512, ES256/384/512).
    jwt_algorithm: str = msgspec.field(default="HS256", name="JWT_ALGORITHM")
    # Tokens naming any other algorithm are refused before any key is touched.
    # Empty means just JWT_ALGORITHM; list more only while rotating to another algorithm.
    jwt_allowed_algorithms: list[str] = msgspec.field(
        default_factory=list, name="JWT_ALLOWED_ALGORITHMS"
    )
    jwt_expire_minutes: Annotated[int, Meta(ge=1, le=60 * 24 * 30)] = msgspec.field(
        default=15, name="JWT_EXPIRE_MINUTES"
    )
    jwt_refresh_expire_minutes: Annotated[int, Meta(ge=1, le=60 * 24 * 365)] = msgspec.field(
        default=60 * 24 * 7, name="JWT_REFRESH_EXPIRE_MINUTES"
    )
    # The HMAC secret for HS* signing (at least 32 bytes).
    jwt_secret_key: SecretStr = msgspec.field(default=SecretStr(""), name="JWT_SECRET_KEY")
    # PEM private key for RS*/ES* signing (usually JWT_PRIVATE_KEY_FILE=/run/secrets/...).
    jwt_private_key: SecretStr = msgspec.field(default=SecretStr(""), name="JWT_PRIVATE_KEY")
    # The `kid` header of new tokens; change it whenever the signing key changes.
    jwt_signing_key_id: str = msgspec.field(default="k1", name="JWT_SIGNING_KEY_ID")
    # Older keys that still verify (rotation). JSON object kid -> {"alg": ..., "key": ...} or
    # {"alg": ..., "key_file": ...}; "key" is the HMAC secret or a PEM public key.
    jwt_verify_keys: SecretStr = msgspec.field(default=SecretStr(""), name="JWT_VERIFY_KEYS")
    # --- JWT: claims ----------------------------------------------------------------------
    jwt_issuer: str = msgspec.field(default="keel", name="JWT_ISSUER")
    jwt_audience: str = msgspec.field(default="keel-api", name="JWT_AUDIENCE")
    jwt_leeway_seconds: Annotated[int, Meta(ge=0, le=3600)] = msgspec.field(
        default=30, name="JWT_LEEWAY_SECONDS"
    )
    # Each process trusts a "not revoked" answer from Redis this long (0 = ask every request).
    jwt_revocation_cache_seconds: Annotated[float, Meta(ge=0, le=60)] = msgspec.field(
        default=1.0, name="JWT_REVOCATION_CACHE_SECONDS"
    )
    # Tokens longer than this are refused before parsing (bytes of the compact form).
    jwt_max_bytes: Annotated[int, Meta(ge=512, le=65536)] = msgspec.field(
        default=4096, name="JWT_MAX_BYTES"
    )
    # --- Request signatures (API keys) -------------------------------------------------------
    # Encrypts API key secrets at rest (AES-256-GCM, key derived with HKDF).
    api_key_encryption_key: SecretStr = msgspec.field(
        default=SecretStr(""), name="API_KEY_ENCRYPTION_KEY"
    )
    signature_window_seconds: Annotated[int, Meta(ge=1, le=86400)] = msgspec.field(
        default=300, name="SIGNATURE_WINDOW_SECONDS"
    )
    # Each API process keeps an active key's decrypted secret this long (a disabled key keeps
    # working that long); 0 = read the database on every signed request.
    api_key_cache_seconds: Annotated[float, Meta(ge=0, le=3600)] = msgspec.field(
        default=10.0, name="API_KEY_CACHE_SECONDS"
    )
    # --- Rate limits (keel.auth.throttle) ---------------------------------------------------
    # Login requests per client address (TRUSTED_PROXIES decides what the address is).
    login_per_ip_per_minute: Annotated[int, Meta(ge=1, le=1_000_000)] = msgspec.field(
        default=20, name="AUTH_LOGIN_PER_IP_PER_MINUTE"
    )
    # Login attempts per (username, client) until a success: that client then gets 429 for
    # the rest of the window. Other clients are not affected.
    login_failures_per_user: Annotated[int, Meta(ge=1, le=10_000)] = msgspec.field(
        default=5, name="AUTH_LOGIN_FAILURES_PER_USER"
    )
    login_failure_window_seconds: Annotated[int, Meta(ge=1, le=86400)] = msgspec.field(
        default=900, name="AUTH_LOGIN_FAILURE_WINDOW_SECONDS"
    )
    # Attempts per username from all clients before it is slowed (never locked): one attempt
    # per backoff interval, doubling from 1 s up to AUTH_LOGIN_BACKOFF_MAX_SECONDS.
    login_attempts_per_account: Annotated[int, Meta(ge=1, le=1_000_000)] = msgspec.field(
        default=20, name="AUTH_LOGIN_ATTEMPTS_PER_ACCOUNT"
    )
    login_backoff_max_seconds: Annotated[int, Meta(ge=1, le=3600)] = msgspec.field(
        default=30, name="AUTH_LOGIN_BACKOFF_MAX_SECONDS"
    )
    # Bad signatures per (key id, client): that client gets 429 for the window.
    signature_failures_per_key: Annotated[int, Meta(ge=1, le=1_000_000)] = msgspec.field(
        default=20, name="AUTH_SIGNATURE_FAILURES_PER_KEY"
    )
    # Bad signatures per key id from all clients: past it, clients that failed are refused;
    # a client with valid signatures never is.
    signature_failures_per_key_total: Annotated[int, Meta(ge=1, le=10_000_000)] = msgspec.field(
        default=200, name="AUTH_SIGNATURE_FAILURES_PER_KEY_TOTAL"
    )
    signature_failure_window_seconds: Annotated[int, Meta(ge=1, le=86400)] = msgspec.field(
        default=300, name="AUTH_SIGNATURE_FAILURE_WINDOW_SECONDS"
    )
    # --- Password hashing (Argon2id, keel.domain.users.passwords) ---------------------------
    # Hashes at once per API process, each in a thread of its own (off the event loop).
    password_hash_threads: Annotated[int, Meta(ge=1, le=64)] = msgspec.field(
        default=2, name="AUTH_PASSWORD_HASH_THREADS"
    )
    # Logins waiting for a hashing thread; more get 503 + Retry-After at once.
    password_hash_queue: Annotated[int, Meta(ge=0, le=10_000)] = msgspec.field(
        default=16, name="AUTH_PASSWORD_HASH_QUEUE"
    )
