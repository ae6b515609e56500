"""The whole configuration: one frozen struct per concern."""

from __future__ import annotations

from pathlib import Path

import msgspec

from keel.config.sections.app import AppSettings
from keel.config.sections.auth import AuthSettings
from keel.config.sections.db import DbSettings
from keel.config.sections.gpu import GpuSettings
from keel.config.sections.http import HttpSettings
from keel.config.sections.log import LogSettings
from keel.config.sections.metrics import MetricsSettings
from keel.config.sections.redis import RedisSettings
from keel.config.sections.worker import WorkerSettings
from keel.config.types import SecretValues

# Attribute on Settings -> section type. Order is the order `keel config show` prints.
SECTIONS: dict[str, type[msgspec.Struct]] = {
    "app": AppSettings,
    "http": HttpSettings,
    "log": LogSettings,
    "db": DbSettings,
    "redis": RedisSettings,
    "auth": AuthSettings,
    "worker": WorkerSettings,
    "gpu": GpuSettings,
    "metrics": MetricsSettings,
}


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    app: AppSettings = msgspec.field(default_factory=AppSettings)
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    db: DbSettings = msgspec.field(default_factory=DbSettings)
    redis: RedisSettings = msgspec.field(default_factory=RedisSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    worker: WorkerSettings = msgspec.field(default_factory=WorkerSettings)
    gpu: GpuSettings = msgspec.field(default_factory=GpuSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    # Where configs/ and secrets/ were read from; relative paths in settings resolve here.
    root: Path = msgspec.field(default_factory=Path.cwd)
    # Every secret value that was loaded; the lifespan hands these to the log redactor.
    secret_values: frozenset[str] = SecretValues()

    def resolve_path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.root / path
