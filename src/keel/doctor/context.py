"""What the checks share: the environment, the settings (loaded once) and cached probes.

Checks ask the context for what they need; a helper that cannot deliver (the configuration
does not load, the database is unreachable) raises :class:`Blocked`, which the runner shows as
SKIP naming the check to look at instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.config import ConfigError, load_with_sources
from keel.config.guards import environment_guards
from keel.config.loader import config_root
from keel.doctor.model import Blocked

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from keel.config import LoadedConfig, Settings


@dataclass
class DoctorContext:
    env: str
    environ: Mapping[str, str]
    root: Path
    min_free_mb: int = 512
    # The local clock (seconds since the epoch). Tests shift it: a host clock cannot be moved.
    clock: Callable[[], float] = time.time
    _loaded: LoadedConfig | None = None
    _load_problems: list[str] | None = None
    _guard_problems: list[str] = field(default_factory=list)
    _redis: Redis | None = None
    _probes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, env: str | None, environ: Mapping[str, str], **kwargs: Any) -> DoctorContext:
        root = config_root(environ)
        name = env or environ.get("APP_ENV") or "local"
        return cls(env=name, environ=environ, root=root, **kwargs)

    @property
    def env_file(self) -> Path:
        return self.root / "configs" / self.env / "app.env"

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets" / f"{self.env}.yaml"

    def load_config(self) -> tuple[LoadedConfig | None, list[str], list[str]]:
        """(loaded config or None, type/file problems, prod-guard problems); loaded once."""
        if self._load_problems is None:
            try:
                # Guards apart: the prod checks report each one; the rest still needs settings.
                self._loaded = load_with_sources(
                    self.env, root=self.root, environ=self.environ, check_guards=False
                )
                self._load_problems = []
                self._guard_problems = environment_guards(
                    self._loaded.settings, self._loaded.sources
                )
            except ConfigError as exc:
                self._load_problems = exc.problems
        return self._loaded, self._load_problems, self._guard_problems

    @property
    def settings(self) -> Settings:
        loaded, problems, _ = self.load_config()
        if loaded is None:
            raise Blocked(f"configuration does not load ({len(problems)} problems: config.load)")
        return loaded.settings

    def secret_values(self) -> list[str]:
        loaded = self._loaded
        if loaded is None:
            return []
        return sorted((v for v in loaded.settings.secret_values if len(v) >= 4), key=len)[::-1]

    def redis(self) -> Redis:
        settings = self.settings
        if settings.redis.backend != "redis":
            raise Blocked("REDIS_BACKEND=memory: no Redis in this environment")
        if self._redis is None:
            from keel.redis_conn import make_client

            self._redis = make_client(settings)
        return self._redis

    def probe(self, name: str) -> Any:
        return self._probes.get(name)

    def remember(self, name: str, value: Any) -> Any:
        self._probes[name] = value
        return value

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
