"""The Makefile as a newcomer types it: help lists the variables, run honours APP_ENV/ENV."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]


def make(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("APP_ENV", "ENV", "MAKEFLAGS")}
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=REPO,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_lists_targets_and_variables() -> None:
    out = make("help").stdout
    for target in ("run", "dev", "test", "lint", "bench", "up"):
        assert re.search(rf"^  {target} +\S", out, re.MULTILINE), target
    variables = out.split("Variables", 1)[1]
    for name in ("ENV=", "APP_ENV=", "HTTP_PORT=", "GPU="):
        assert name in variables


def test_run_uses_app_env_then_env_then_local() -> None:
    assert "APP_ENV=local " in make("-n", "run").stdout
    assert "APP_ENV=test " in make("-n", "run", APP_ENV="test").stdout
    assert "APP_ENV=test " in make("-n", "run", "ENV=test").stdout
    assert "APP_ENV=dev " in make("-n", "dev", ENV="dev").stdout
    assert "HTTP_RELOAD=true" in make("-n", "dev").stdout


def test_run_refuses_an_unknown_env_in_one_line() -> None:
    result = make("run", APP_ENV="staging")
    assert result.returncode != 0
    assert "APP_ENV='staging' is not an environment; valid: local, dev, test, prod" in (
        result.stderr
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_run_refuses_app_env_and_env_that_disagree() -> None:
    result = make("run", "ENV=dev", APP_ENV="test")
    assert result.returncode != 0
    assert "APP_ENV=test and ENV=dev disagree" in result.stderr


def test_every_published_api_port_is_http_port() -> None:
    for env, default in (("dev", "8000"), ("test", "18000")):
        compose = yaml.safe_load((REPO / "configs" / env / "compose.yaml").read_text())
        assert compose["services"]["api"]["ports"] == [f"127.0.0.1:${{HTTP_PORT:-{default}}}:8000"]
