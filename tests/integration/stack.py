"""Drive a Compose project from tests: commands, container states, health waits, API calls.

Works with `docker compose` (v2) and `docker-compose` (v1): v1 has no `up --wait`, so health is
polled with `docker inspect`. Only the Debian docker client is used (it matches the daemon).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
OFFLINE_PREFIX = os.environ.get("KEEL_OFFLINE_PREFIX", "keel-offline")
OFFICIAL = {
    "POSTGRES_IMAGE": ("postgres:15.8-bookworm", f"{OFFLINE_PREFIX}/postgres:15"),
    "REDIS_IMAGE": ("redis:7.2.5-bookworm", f"{OFFLINE_PREFIX}/redis:7"),
    "NGINX_IMAGE": ("nginxinc/nginx-unprivileged:1.26.2-bookworm", f"{OFFLINE_PREFIX}/nginx:1.22"),
}
T = TypeVar("T")


def compose_command() -> list[str]:
    """`docker compose` when the v2 plugin answers, else docker-compose (v1)."""
    probe = subprocess.run([DOCKER, "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [DOCKER, "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise RuntimeError("neither `docker compose` nor `docker-compose` is installed")


def docker_available() -> str | None:
    """None when a daemon answers, else why not (for the skip message)."""
    if not Path(DOCKER).exists() and shutil.which(DOCKER) is None:
        return "the docker client is not installed (containers/ci-setup.sh installs it)"
    result = subprocess.run([DOCKER, "info"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return "no Docker daemon answers (containers/dockerd.sh starts one)"
    return None


def image_exists(name: str) -> bool:
    return (
        subprocess.run(
            [DOCKER, "image", "inspect", name], capture_output=True, check=False
        ).returncode
        == 0
    )


def service_images() -> dict[str, str]:
    """Official pinned images when present here, else the offline kit's (as compose.sh picks)."""
    chosen: dict[str, str] = {}
    for var, (official, offline) in OFFICIAL.items():
        if os.environ.get(var):
            chosen[var] = os.environ[var]
        elif not image_exists(official) and image_exists(offline):
            chosen[var] = offline
    return chosen


def stage_key(key: Path, directory: Path) -> Path:
    """A copy of the age key that uid 10001 in the container can read (see compose.sh)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    staged = directory / "age_key"
    shutil.copyfile(key, staged)
    staged.chmod(0o644)
    return staged


def wait_for(predicate: Callable[[], T | bool | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.3)


@dataclass(frozen=True)
class Container:
    service: str
    name: str
    id: str
    status: str
    health: str | None
    exit_code: int
    user: str
    read_only: bool


@dataclass
class Stack:
    """One Compose project: its files, environment and project name."""

    project: str
    files: Sequence[Path]
    env: Mapping[str, str]
    compose: list[str] = field(default_factory=compose_command)

    def command(self, *args: str) -> list[str]:
        files = [arg for path in self.files for arg in ("-f", str(path))]
        return [*self.compose, "-p", self.project, *files, *args]

    def run(
        self, *args: str, check: bool = True, timeout: float = 300, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(*args),
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=input,
            cwd=self.files[0].parent,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"`{' '.join(args)}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def containers(self) -> list[Container]:
        ids = subprocess.run(
            [DOCKER, "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        if not ids:
            return []
        raw = subprocess.run(
            [DOCKER, "inspect", *ids], capture_output=True, text=True, check=True
        ).stdout
        found = []
        for item in json.loads(raw):
            state = item["State"]
            found.append(
                Container(
                    service=item["Config"]["Labels"].get("com.docker.compose.service", ""),
                    name=item["Name"].lstrip("/"),
                    id=item["Id"],
                    status=state["Status"],
                    health=(state.get("Health") or {}).get("Status"),
                    exit_code=int(state.get("ExitCode", 0)),
                    user=item["Config"].get("User") or "",
                    read_only=bool(item["HostConfig"].get("ReadonlyRootfs")),
                )
            )
        return found

    def container(self, service: str, index: int = 0) -> Container:
        matches = sorted(
            (c for c in self.containers() if c.service == service), key=lambda c: c.name
        )
        assert matches, f"no container for service {service} in {self.project}"
        return matches[index]

    def health_of(self, service: str) -> str | None:
        return self.container(service).health

    def wait_healthy(self, timeout: float = 180) -> None:
        """Every long-running container healthy (or running, without a healthcheck) and every
        one-shot exited 0; fails at once on a non-zero exit."""

        def settled() -> bool:
            containers = self.containers()
            failed = [c for c in containers if c.status in {"exited", "dead"} and c.exit_code]
            if failed:
                raise AssertionError(
                    f"{[(c.name, c.exit_code) for c in failed]} exited non-zero:\n{self.logs()}"
                )
            pending = [
                c
                for c in containers
                if c.status not in {"exited", "dead"}
                and (c.health not in {None, "healthy"} or c.status != "running")
            ]
            return bool(containers) and not pending

        try:
            wait_for(settled, timeout, f"{self.project} to be healthy")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe()}\n{self.logs()}") from None

    def wait_health(self, service: str, wanted: str, timeout: float = 60) -> None:
        wait_for(lambda: self.health_of(service) == wanted, timeout, f"{service} to be {wanted}")

    def describe(self) -> str:
        return "\n".join(
            f"  {c.name}: {c.status} health={c.health} exit={c.exit_code}"
            for c in self.containers()
        )

    def logs(self, *services: str, tail: int = 60) -> str:
        result = self.run("logs", "--no-color", f"--tail={tail}", *services, check=False)
        return result.stdout + result.stderr

    def docker(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        result = subprocess.run(
            [DOCKER, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {result.stdout}{result.stderr}")
        return result.stdout


class Api:
    """The stack's HTTP API through its published loopback port, as a user calls it."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.client = httpx.Client(base_url=base_url, timeout=10)

    def login(self, stack: Stack, username: str, password: str) -> None:
        """Create the user with `keel users create` in the api container, then log in."""
        created = stack.run(
            "exec",
            "-T",
            "api",
            "keel",
            "users",
            "create",
            username,
            "--password-file",
            "-",
            input=password + "\n",
            check=False,
        )
        assert created.returncode == 0 or "exists" in created.stderr, created.stderr
        response = self.client.post(
            "/api/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        self.client.headers["Authorization"] = f"Bearer {token}"

    def submit(self, kind: str, payload: Any = None, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": kind, **extra}
        if payload is not None:
            body["payload"] = payload
        response = self.client.post("/api/jobs", json=body)
        assert response.status_code == 202, response.text
        return dict(response.json())

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_status(self, job_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
        return wait_for(
            lambda: (job := self.job(job_id))["status"] in statuses and job,
            timeout,
            f"job {job_id} to reach {sorted(statuses)}",
        )

    def wait_done(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        return self.wait_status(job_id, {"succeeded", "failed", "cancelled"}, timeout)
