"""What production refuses (ranges are declared on the fields and checked by the loader)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from keel.client_address import parse_networks
from keel.config.fields import field_specs

if TYPE_CHECKING:
    from keel.config.settings import Settings
    from keel.config.types import Source

# Values that a template or a tutorial would have put there.
_PLACEHOLDER = re.compile(
    r"change[-_ ]?me|placeholder|example|secret|password|insecure|not[-_ ]?for[-_ ]?prod|"
    r"^dev[-_]|^test[-_]|^local[-_]|xxxx|1234|todo|replace",
    re.IGNORECASE,
)
# Signing keys need real entropy; passwords get a lower bar.
_MIN_LENGTH = {"JWT_SECRET_KEY": 32}
_DEFAULT_MIN_LENGTH = 16
_URL_SECRETS = {"DATABASE_URL", "REDIS_URL"}
# Structured secrets (PEM, a JSON key ring): keel.auth validates their keys by type and size.
_STRUCTURED_SECRETS = {"JWT_PRIVATE_KEY", "JWT_VERIFY_KEYS"}


def _where(sources: Mapping[str, Source], name: str) -> str:
    source = sources.get(name)
    return source.where if source is not None and source.where else "default"


def environment_guards(settings: Settings, sources: Mapping[str, Source]) -> list[str]:
    problems: list[str] = []
    specs = field_specs()
    values: dict[str, Any] = {name: spec.value_in(settings) for name, spec in specs.items()}
    _, proxy_problems = parse_networks(settings.http.trusted_proxies)
    problems.extend(
        f"{_where(sources, 'TRUSTED_PROXIES')}: TRUSTED_PROXIES: {p}" for p in proxy_problems
    )
    if settings.app.env != "prod":
        return problems

    if settings.app.debug:
        problems.append(f"{_where(sources, 'DEBUG')}: DEBUG: must be false in prod")
    if settings.gpu.fake_nvml:
        problems.append(
            f"{_where(sources, 'GPU_FAKE_NVML')}: GPU_FAKE_NVML: fake GPUs are for tests; "
            "unset it in prod"
        )
    problems.extend(_security_refusals(settings, sources))
    if "*" in settings.http.cors_origins:
        problems.append(
            f"{_where(sources, 'CORS_ORIGINS')}: CORS_ORIGINS: '*' is refused in prod; "
            "list the exact origins"
        )
    for name, spec in specs.items():
        value = values[name]
        if not spec.secret or not value or name in _URL_SECRETS | _STRUCTURED_SECRETS:
            continue
        minimum = _MIN_LENGTH.get(name, _DEFAULT_MIN_LENGTH)
        if _PLACEHOLDER.search(str(value)):
            problems.append(
                f"{_where(sources, name)}: {name}: looks like a placeholder; "
                "generate one with `keel secrets init prod` or `keel secrets set`"
            )
        elif len(str(value)) < minimum:
            problems.append(
                f"{_where(sources, name)}: {name}: too short for prod "
                f"({len(str(value))} < {minimum} characters)"
            )
    for name in required_secrets(settings):
        if not values[name]:
            problems.append(f"{name}: required in prod and not set (add it to secrets/prod.yaml)")
    return problems


# What prod refuses although the range allows it: each widens what a stolen or replayed
# credential is worth, or (ALLOWED_HOSTS=*) lets any Host header through.
PROD_MAX_SIGNATURE_WINDOW_SECONDS = 900
PROD_MAX_JWT_LEEWAY_SECONDS = 120


def _security_refusals(settings: Settings, sources: Mapping[str, Source]) -> list[str]:
    auth = settings.auth
    problems: list[str] = []
    if auth.signature_window_seconds > PROD_MAX_SIGNATURE_WINDOW_SECONDS:
        problems.append(
            f"{_where(sources, 'SIGNATURE_WINDOW_SECONDS')}: SIGNATURE_WINDOW_SECONDS: at most "
            f"{PROD_MAX_SIGNATURE_WINDOW_SECONDS} in prod (a signed request can be replayed "
            f"that long), got {auth.signature_window_seconds}"
        )
    if auth.jwt_leeway_seconds > PROD_MAX_JWT_LEEWAY_SECONDS:
        problems.append(
            f"{_where(sources, 'JWT_LEEWAY_SECONDS')}: JWT_LEEWAY_SECONDS: at most "
            f"{PROD_MAX_JWT_LEEWAY_SECONDS} in prod (expired tokens stay valid that long), "
            f"got {auth.jwt_leeway_seconds}"
        )
    if "*" in settings.http.allowed_hosts:
        problems.append(
            f"{_where(sources, 'ALLOWED_HOSTS')}: ALLOWED_HOSTS: '*' is refused in prod; "
            "list the host names clients use (health probes are exempt)"
        )
    return problems


def required_secrets(settings: Settings) -> list[str]:
    """Secrets this configuration cannot run without (``keel secrets init`` generates these)."""
    needed: list[str] = ["API_KEY_ENCRYPTION_KEY"]
    if settings.auth.jwt_algorithm.startswith("HS"):
        needed.append("JWT_SECRET_KEY")
    if settings.db.type != "sqlite" and not settings.db.url:
        needed.append("DB_PASSWORD")
    if settings.redis.backend == "redis" and not settings.redis.url:
        needed.append("REDIS_PASSWORD")
    return needed
