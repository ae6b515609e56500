"""Checks across settings: value ranges everywhere, and what production refuses."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from keel.config.fields import field_specs

if TYPE_CHECKING:
    from keel.config.loader import Source
    from keel.config.settings import Settings

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
_RANGES: dict[str, tuple[float, float]] = {
    "HTTP_PORT": (1, 65535),
    "DB_PORT": (0, 65535),
    "REDIS_PORT": (1, 65535),
    "METRICS_PORT": (1, 65535),
    "METRICS_WORKER_PORT": (1, 65535),
    "HTTP_WORKERS": (1, 256),
    "HTTP_RUNTIME_THREADS": (1, 256),
    "HTTP_BACKLOG": (1, 65535),
    "HTTP_WORKERS_KILL_TIMEOUT": (1, 3600),
    "HTTP_MAX_BODY_BYTES": (1, 1 << 31),
    "DB_POOL_SIZE": (1, 1000),
    "DB_CONNECT_RETRIES": (0, 100),
    "WORKER_PROCESSES": (1, 256),
    "WORKER_MAX_ASYNC_TASKS": (1, 10_000),
    "JWT_EXPIRE_MINUTES": (1, 60 * 24 * 30),
}


def _where(sources: Mapping[str, Source], name: str) -> str:
    source = sources.get(name)
    return source.where if source is not None and source.where else "default"


def environment_guards(settings: Settings, sources: Mapping[str, Source]) -> list[str]:
    problems: list[str] = []
    specs = field_specs()
    values: dict[str, Any] = {
        name: getattr(getattr(settings, spec.section), spec.attr) for name, spec in specs.items()
    }
    for name, (low, high) in _RANGES.items():
        value = values.get(name)
        if isinstance(value, int | float) and not low <= value <= high:
            problems.append(
                f"{_where(sources, name)}: {name}: expected {low:g}..{high:g}, got {value!r}"
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
