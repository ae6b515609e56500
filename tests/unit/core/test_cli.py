"""The CLI table: every command is reachable, and each known command imports only its modules."""

from __future__ import annotations

import subprocess
import sys

import pytest

from keel.cli import COMMAND_MODULES, COMMAND_OWNERS, CONFIG_ERROR_EXIT, build_parser, main


def test_every_registered_command_has_an_owner_entry() -> None:
    parser = build_parser([])
    subparsers = next(a for a in parser._actions if a.dest == "command")
    names = set(subparsers.choices)  # type: ignore[arg-type]
    assert names == set(COMMAND_OWNERS)
    assert {m for owners in COMMAND_OWNERS.values() for m in owners} == set(COMMAND_MODULES)


def test_each_command_parses_with_only_its_owner_modules() -> None:
    for command in COMMAND_OWNERS:
        parser = build_parser([command])
        subparsers = next(a for a in parser._actions if a.dest == "command")
        assert command in subparsers.choices  # type: ignore[operator]


def test_healthcheck_does_not_import_the_web_framework_or_the_orm() -> None:
    code = (
        "import sys; from keel.cli import build_parser; build_parser(['healthcheck']); "
        "print(sorted(m for m in ('litestar', 'sqlalchemy', 'advanced_alchemy', 'taskiq') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_worker_healthcheck_run_stays_off_the_web_framework_and_the_orm() -> None:
    # The container runs this every few seconds: it must stay a Redis client and nothing more.
    code = (
        "import sys; from keel.cli import main\n"
        "try:\n    code = main(['healthcheck', 'worker'])\nexcept SystemExit as exc:\n"
        "    code = exc.code\n"
        "print(code, sorted(m for m in ('litestar', 'sqlalchemy', 'advanced_alchemy', 'taskiq') "
        "if m in sys.modules))"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "APP_ENV": "local",
        "REDIS_BACKEND": "redis",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": "1",  # nothing listens: the check answers unhealthy
        "REDIS_CONNECT_TIMEOUT": "0.5",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert "unhealthy: cannot read heartbeats from Redis at 127.0.0.1:1/0" in result.stdout
    assert result.stdout.strip().endswith("1 []"), result.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["config", "show"],
        ["serve"],
        ["migrate"],
        ["worker"],
        ["healthcheck", "worker"],
        ["gpu"],
        ["users", "create", "someone", "--password-file", "-"],
        ["apikeys", "create", "svc"],
        ["apikeys", "disable", "svc"],
        ["credentials", "export", "--dir", "/tmp"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_every_command_refuses_a_bad_setting_with_the_config_report(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APP_ENV", "local")
    monkeypatch.setenv("HTTP_PORT", "eighty")
    assert main(argv) == CONFIG_ERROR_EXIT
    err = capsys.readouterr().err
    assert "HTTP_PORT" in err
    assert "eighty" in err
