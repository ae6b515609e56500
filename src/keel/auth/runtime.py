"""Everything auth needs at run time, built once from settings (fails fast, naming the setting)."""

from __future__ import annotations

from dataclasses import dataclass

from keel.auth.crypto import SecretCipher
from keel.auth.dev_values import required_secret as _secret
from keel.auth.errors import AuthConfigError
from keel.auth.jwt import JwtService
from keel.auth.keys import build_key_ring
from keel.auth.revocation import Revocations
from keel.auth.throttle import Limits, LoginThrottle, SignatureThrottle
from keel.blocking_pool import BlockingPool
from keel.client_address import ClientAddress, parse_networks
from keel.config import Settings
from keel.config.sections.auth import AuthSettings


@dataclass(frozen=True, slots=True)
class AuthRuntime:
    settings: AuthSettings
    jwt: JwtService
    cipher: SecretCipher
    login_throttle: LoginThrottle
    signature_throttle: SignatureThrottle
    revocations: Revocations
    client_address: ClientAddress
    # Argon2 hashing, off the event loop and capped per process (keel.blocking_pool).
    password_pool: BlockingPool


def build_runtime(settings: Settings) -> AuthRuntime:
    auth = settings.auth
    algorithm = auth.jwt_algorithm
    secret_key = auth.jwt_secret_key.reveal()
    if algorithm.startswith("HS"):
        secret_key = _secret(settings, "JWT_SECRET_KEY", secret_key)
    ring = build_key_ring(
        algorithm=algorithm,
        allowed_algorithms=list(auth.jwt_allowed_algorithms),
        signing_key_id=auth.jwt_signing_key_id,
        secret_key=secret_key,
        private_key_pem=auth.jwt_private_key.reveal(),
        verify_keys=auth.jwt_verify_keys.reveal(),
        resolve_path=settings.resolve_path,
    )
    jwt = JwtService(
        ring,
        issuer=auth.jwt_issuer,
        audience=auth.jwt_audience,
        leeway_seconds=auth.jwt_leeway_seconds,
        max_bytes=auth.jwt_max_bytes,
        access_ttl_seconds=auth.jwt_expire_minutes * 60,
        refresh_ttl_seconds=auth.jwt_refresh_expire_minutes * 60,
    )
    master = _secret(settings, "API_KEY_ENCRYPTION_KEY", auth.api_key_encryption_key.reveal())
    try:
        cipher = SecretCipher(master)
    except ValueError as exc:
        raise AuthConfigError(str(exc)) from None
    return AuthRuntime(
        settings=auth,
        jwt=jwt,
        cipher=cipher,
        login_throttle=LoginThrottle(
            Limits(
                per_client=auth.login_failures_per_user,
                soft_total=auth.login_attempts_per_account,
                window_seconds=auth.login_failure_window_seconds,
                backoff_max_seconds=auth.login_backoff_max_seconds,
            )
        ),
        signature_throttle=SignatureThrottle(
            Limits(
                per_client=auth.signature_failures_per_key,
                soft_total=auth.signature_failures_per_key_total,
                window_seconds=auth.signature_failure_window_seconds,
                backoff_max_seconds=auth.login_backoff_max_seconds,
            )
        ),
        revocations=Revocations(auth.jwt_revocation_cache_seconds),
        client_address=ClientAddress(parse_networks(settings.http.trusted_proxies)[0]),
        password_pool=BlockingPool(
            "password-hash", auth.password_hash_threads, auth.password_hash_queue
        ),
    )
