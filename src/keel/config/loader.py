"""Layered loading: defaults < configs/<env>/app.env < secrets/<env>.yaml < process env.

Every problem is collected and raised together as one :class:`ConfigError`, each line naming
where the value came from (``file:line`` or ``env NAME``), the key, what was expected and the
value (masked when the key is a secret).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import msgspec

from keel.config.dotenv import parse_env_file
from keel.config.errors import ConfigError
from keel.config.fields import FieldSpec, field_specs
from keel.config.guards import environment_guards, range_problems
from keel.config.settings import SECTIONS, Settings
from keel.config.types import ENVIRONMENTS, AppEnv, SecretStr, SecretValues, mask

Layer = Literal["default", "app.env", "secrets", "env"]
SecretsReader = Callable[[Path, Mapping[str, str], AppEnv], Mapping[str, Any]]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class Source:
    layer: Layer
    where: str

    def __str__(self) -> str:
        return self.layer if self.layer == "default" else f"{self.layer} ({self.where})"


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    settings: Settings
    sources: dict[str, Source]


@dataclass(frozen=True, slots=True)
class _Raw:
    value: Any
    source: Source


def config_root(environ: Mapping[str, str]) -> Path:
    """``KEEL_ROOT`` if set (images set it), else the working directory."""
    return Path(environ.get("KEEL_ROOT") or Path.cwd()).resolve()


def resolve_env(env: str | None, environ: Mapping[str, str], root: Path) -> AppEnv:
    name = env or environ.get("APP_ENV") or "local"
    if name not in ENVIRONMENTS:
        raise ConfigError(
            [f"APP_ENV={name!r} is not an environment; valid: {', '.join(ENVIRONMENTS)}"],
            header="unknown environment",
        )
    env_dir = root / "configs" / name
    if not (env_dir / "app.env").is_file():
        present = sorted(p.name for p in (root / "configs").glob("*/app.env") for p in [p.parent])
        raise ConfigError(
            [
                f"{env_dir / 'app.env'} does not exist; environments with a config here: "
                f"{', '.join(present) or 'none'} (under {root / 'configs'}; set KEEL_ROOT "
                "or run from the repository root)"
            ],
            header="missing environment config",
        )
    return name


def default_secrets_reader(path: Path, environ: Mapping[str, str], env: AppEnv) -> dict[str, Any]:
    """Decrypt ``secrets/<env>.yaml`` in memory with the SOPS reader."""
    from keel.secrets.config_source import read_env_secrets

    tree: dict[str, Any] = read_env_secrets(path, environ=environ, env=env)
    return tree


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}_{key}".upper() if prefix else str(key).upper()
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def _suggest(name: str, specs: Mapping[str, FieldSpec]) -> str:
    close = difflib.get_close_matches(name.upper(), list(specs), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _show(spec: FieldSpec, value: Any) -> str:
    return mask(str(value)) if spec.secret else repr(value)


def _read_file_value(path_text: str, root: Path) -> str:
    path = Path(path_text)
    if not path.is_absolute():
        path = root / path
    # Compose secrets and editors add a trailing newline that is never part of the value.
    return path.read_text(encoding="utf-8").rstrip("\r\n")


def _convert(spec: FieldSpec, raw: Any) -> Any:
    """Turn a raw value (str from env files, any scalar from YAML) into the field's type."""
    tp = spec.type
    if spec.is_list:
        if isinstance(raw, list):
            return [str(item) for item in raw]
        text = str(raw).strip()
        if text.startswith("["):
            return [str(item) for item in msgspec.json.decode(text)]
        return [item.strip() for item in text.split(",") if item.strip()]
    if tp is SecretStr:
        return SecretStr(str(raw))
    if tp is str:
        return str(raw)
    if tp is bool:
        if isinstance(raw, bool):
            return raw
        lowered = str(raw).strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError
    if isinstance(raw, str):
        raw = raw.strip()
    if tp is int and isinstance(raw, str) and "_" not in raw:
        return int(raw)
    if tp in (int, float) and isinstance(raw, bool):
        raise ValueError
    if getattr(tp, "__origin__", None) is Literal and raw not in get_args(tp):
        raise ValueError
    return msgspec.convert(raw, tp, strict=False)


def _secret_parts(value: str) -> set[str]:
    """A secret plus the password inside it when it is a URL (logs may print URL parts)."""
    parts = {value}
    if "://" in value:
        try:
            password = urlsplit(value).password
        except ValueError:
            password = None
        if password:
            parts.add(password)
    return parts


class _Collector:
    """Raw values per setting name, in layer order (a later layer overwrites), plus problems."""

    def __init__(self, app_env: AppEnv, root: Path) -> None:
        self.app_env = app_env
        self.root = root
        self.specs = field_specs()
        self.problems: list[str] = []
        self.raw: dict[str, _Raw] = {}
        self.secret_values: set[str] = set()

    def take(self, name: str, value: Any, source: Source, *, allow_file: bool = True) -> None:
        """Record one value for ``name`` (or for ``X`` when ``name`` is ``X_FILE``)."""
        if name == "APP_ENV":
            if str(value) != self.app_env:
                self.problems.append(
                    f"{source.where}: APP_ENV={value!r} contradicts the selected env "
                    f"{self.app_env!r}"
                )
            return
        specs = self.specs
        if name not in specs and allow_file and name.endswith("_FILE") and name[:-5] in specs:
            target = name[:-5]
            try:
                value = _read_file_value(str(value), self.root)
            except OSError as exc:
                self.problems.append(
                    f"{source.where}: {name}: cannot read {value!r} for {target}: "
                    f"{exc.strerror or exc}"
                )
                return
            self.raw[target] = _Raw(value, Source(source.layer, f"{source.where} via {name}"))
            return
        if name not in specs:
            self.problems.append(f"{source.where}: unknown key {name}{_suggest(name, specs)}")
            return
        self.raw[name] = _Raw(value, source)

    def read_app_env(self, path: Path) -> None:
        lines, syntax = parse_env_file(path)
        self.problems.extend(syntax)
        for line in lines:
            self.take(line.key, line.value, Source("app.env", line.where))

    def read_secrets(self, path: Path, environ: Mapping[str, str], reader: SecretsReader) -> None:
        try:
            tree = reader(path, environ, self.app_env)
        except Exception as exc:  # noqa: BLE001 - the reader's message is the user's answer
            self.problems.append(str(exc))
            return
        for name, value in _flatten(tree).items():
            if value is None:
                continue
            self.secret_values.update(_secret_parts(str(value)))
            self.take(name, value, Source("secrets", str(path)), allow_file=False)

    def read_environ(self, environ: Mapping[str, str]) -> None:
        """Known names and NAME_FILE only: the rest of the environment is not ours."""
        for name in self.specs:
            file_name = f"{name}_FILE"
            if name in environ and file_name in environ:
                self.problems.append(f"env {name} and env {file_name} are both set; keep one")
            elif file_name in environ:
                self.take(file_name, environ[file_name], Source("env", f"env {file_name}"))
            elif name in environ:
                self.take(name, environ[name], Source("env", f"env {name}"))

    def convert(self) -> tuple[dict[str, dict[str, Any]], dict[str, Source]]:
        sections: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
        sources: dict[str, Source] = {}
        for name, spec in self.specs.items():
            entry = self.raw.get(name)
            if entry is None:
                sources[name] = Source("default", "")
                continue
            sources[name] = entry.source
            try:
                value = _convert(spec, entry.value)
            except (ValueError, TypeError, msgspec.ValidationError, msgspec.DecodeError):
                self.problems.append(
                    f"{entry.source.where}: {name}: expected {spec.describe_type()}, "
                    f"got {_show(spec, entry.value)}"
                )
                continue
            sections[spec.section][spec.attr] = value
            if spec.secret and value:
                self.secret_values.update(_secret_parts(str(value)))
        return sections, sources


def load_with_sources(
    env: str | None = None,
    *,
    root: Path | None = None,
    environ: Mapping[str, str] | None = None,
    secrets_reader: SecretsReader | None = None,
) -> LoadedConfig:
    environ = os.environ if environ is None else environ
    root = (root or config_root(environ)).resolve()
    app_env = resolve_env(env, environ, root)
    collector = _Collector(app_env, root)
    collector.read_app_env(root / "configs" / app_env / "app.env")
    secrets_path = root / "secrets" / f"{app_env}.yaml"
    if secrets_path.is_file():
        collector.read_secrets(secrets_path, environ, secrets_reader or default_secrets_reader)
    collector.read_environ(environ)
    sections, sources = collector.convert()
    sections["app"]["env"] = app_env
    if env is not None:
        sources["APP_ENV"] = Source("env", "--env")
    elif "APP_ENV" in environ:
        sources["APP_ENV"] = Source("env", "env APP_ENV")
    if collector.problems:
        # Values that did convert are range-checked too: one report names every problem.
        converted = {
            name: sections[spec.section][spec.attr]
            for name, spec in collector.specs.items()
            if spec.attr in sections[spec.section]
        }
        raise ConfigError(collector.problems + range_problems(converted, sources))

    settings = Settings(
        root=root,
        secret_values=SecretValues(v for v in collector.secret_values if v),
        **{name: SECTIONS[name](**values) for name, values in sections.items()},  # type: ignore[arg-type]
    )
    guard_problems = environment_guards(settings, sources)
    if guard_problems:
        raise ConfigError(guard_problems, header=f"configuration refused for APP_ENV={app_env}")
    return LoadedConfig(settings=settings, sources=sources)


def load(
    env: str | None = None,
    *,
    root: Path | None = None,
    environ: Mapping[str, str] | None = None,
    secrets_reader: SecretsReader | None = None,
) -> Settings:
    """Load and validate the settings for ``env`` (default: ``$APP_ENV`` or ``local``)."""
    return load_with_sources(
        env, root=root, environ=environ, secrets_reader=secrets_reader
    ).settings
