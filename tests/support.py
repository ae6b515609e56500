"""What every test suite shares: the repository root, a free loopback port, settings without
the secrets layer. One copy here instead of one per test module."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keel.config import Settings, load

REPO = Path(__file__).resolve().parents[1]


def with_test_support(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for a subprocess that may need ``keel_testing`` (the fake NVML): ``src/`` on
    its ``PYTHONPATH`` (a checkout's editable install has it anyway; a wheel install does not)."""
    paths = [str(REPO / "src"), *filter(None, [env.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": ":".join(paths)}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def no_secrets(path: Path, environ: Mapping[str, str], env: str) -> dict[str, Any]:
    """A secrets reader that reads nothing: tests give their values in ``environ``."""
    return {}


def settings_for(env: str = "local", environ: Mapping[str, str] | None = None) -> Settings:
    """Settings of ``configs/<env>`` in this repository plus ``environ``, no secrets file."""
    return load(env, root=REPO, environ=environ or {}, secrets_reader=no_secrets)
