"""A real `keel serve` (Granian) on PostgreSQL + Redis, with a user and an API key, for tests
that need what only a real server has: client addresses, X-Forwarded-For, worker processes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.service.conftest import KEEL, REPO, Proc, process_env
from tests.service.servers import free_port, wait_port

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class LiveApi:
    url: str
    username: str
    key_id: str
    key_secret: str
    env: dict[str, str]
    proc: Proc


def keel_cli(args: list[str], env: dict[str, str], stdin: str = "") -> str:
    done = subprocess.run(
        [KEEL, *args],
        env=process_env(env),
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def start_live_api(
    spawn: Callable[..., Proc], env: dict[str, str], log_dir: Path, username: str = "alice"
) -> LiveApi:
    keel_cli(["users", "create", username, "--password-file", "-"], env, PASSWORD + "\n")
    key = json.loads(keel_cli(["apikeys", "create", f"svc-{username}", "--json"], env))
    port = free_port()
    server_env = {**env, "HTTP_PORT": str(port), "HTTP_WORKERS": "1", "DEBUG": "false"}
    proc = spawn(["serve"], server_env, "serve")
    wait_port(port, 60, proc.process, proc.log)
    return LiveApi(
        url=f"http://127.0.0.1:{port}",
        username=username,
        key_id=key["key_id"],
        key_secret=key["secret"],
        env=server_env,
        proc=proc,
    )
