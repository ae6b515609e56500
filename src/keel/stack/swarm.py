"""The Docker CLI, as the stack commands use it: one call per question, errors as StackError.

Uses Debian's ``/usr/bin/docker`` (matching the engine) unless ``DOCKER`` names another client;
``DOCKER_HOST`` picks the manager. Every answer is read from ``--format`` output, never from a
tool's stderr (stderr only becomes part of an error message).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.stack.compose_files import StackError

DEFAULT_DOCKER = "/usr/bin/docker"
_AGO = re.compile(r"\s+(?:less than a second|about an? \w+|\d+ \w+) ago$")


def docker_binary() -> str:
    chosen = os.environ.get("DOCKER")
    if chosen:
        return chosen
    return DEFAULT_DOCKER if Path(DEFAULT_DOCKER).exists() else "docker"


@dataclass(frozen=True, slots=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    def last_line(self) -> str:
        lines = [line for line in (self.err or self.out).strip().splitlines() if line.strip()]
        return lines[-1] if lines else f"exit {self.code}"


def docker(*args: str, timeout: float = 120, stdin: str | None = None) -> Result:
    command = [docker_binary(), *args]
    try:
        done = subprocess.run(  # noqa: S603 - our own argument list, no shell
            command, capture_output=True, text=True, check=False, timeout=timeout, input=stdin
        )
    except FileNotFoundError:
        raise StackError(f"the docker client {command[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise StackError(
            f"`docker {' '.join(args[:3])}` did not answer in {timeout:.0f} s"
        ) from None
    return Result(done.returncode, done.stdout, done.stderr)


def must(*args: str, what: str, timeout: float = 120) -> str:
    result = docker(*args, timeout=timeout)
    if not result.ok:
        raise StackError(f"{what}: {result.last_line()}")
    return result.out


def inspect(kind: str, name: str) -> dict[str, Any] | None:
    result = docker(kind, "inspect", name)
    if not result.ok:
        return None
    items: list[dict[str, Any]] = json.loads(result.out)
    return items[0] if items else None


@dataclass(frozen=True, slots=True)
class Node:
    hostname: str
    state: str
    availability: str
    labels: dict[str, str]


def manager_check() -> None:
    info = docker("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")
    if not info.ok:
        raise StackError(f"no Docker daemon answers ({info.last_line()}); set DOCKER_HOST")
    state, _, control = info.out.strip().partition(" ")
    if state != "active" or control != "true":
        host = os.environ.get("DOCKER_HOST", "the local daemon")
        raise StackError(
            f"{host} is not a swarm manager (swarm state {state}): point DOCKER_HOST at a "
            "manager, or `docker swarm init` (test cluster: make cluster-up)"
        )


def nodes() -> list[Node]:
    ids = must("node", "ls", "-q", what="listing the swarm's nodes").split()
    if not ids:
        return []
    fmt = "|".join(
        "{{json .%s}}" % field  # noqa: UP031 - Go template braces
        for field in ("Description.Hostname", "Status.State", "Spec.Availability", "Spec.Labels")
    )
    out = must("node", "inspect", "--format", fmt, *ids, what="reading node labels")
    found = []
    for line in out.strip().splitlines():
        host, state, availability, labels = (json.loads(part) for part in line.split("|"))
        found.append(Node(host, state, availability, labels or {}))
    return found


@dataclass(frozen=True, slots=True)
class Task:
    name: str
    node: str
    desired: str
    state: str
    error: str

    def describe(self) -> str:
        where = f" on {self.node}" if self.node else ""
        error = f": {self.error}" if self.error else ""
        # "Starting 5 seconds ago" -> "Starting": progress lines change only with the state.
        state = _AGO.sub("", self.state)
        return f"{self.name}{where} {state}{error}"


def tasks(service: str, *, running_only: bool = False) -> list[Task]:
    args = ["service", "ps", "--no-trunc", "--format"]
    args.append("{{.Name}}|{{.Node}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}")
    if running_only:
        args += ["--filter", "desired-state=running"]
    result = docker(*args, service)
    if not result.ok:
        return []
    found = []
    for line in result.out.strip().splitlines():
        name, node, desired, state, error = [*line.split("|", 4), "", "", "", ""][:5]
        found.append(Task(name, node, desired, state, error.strip()))
    return found


def running_task_specs(service: str) -> list[dict[str, Any]]:
    """The specs of the service's tasks that are meant to run (to compare with its template)."""
    ids = docker("service", "ps", "-q", "--filter", "desired-state=running", service).out.split()
    if not ids:
        return []
    result = docker("inspect", "--type", "task", *ids)
    if not result.ok:
        return []
    return [task.get("Spec", {}) for task in json.loads(result.out)]


def stack_objects(kind: str, stack: str) -> list[str]:
    out = must(
        kind,
        "ls",
        "--filter",
        f"label=com.docker.stack.namespace={stack}",
        "--format",
        "{{.Name}}",
        what=f"listing the stack's {kind}s",
    )
    return out.split()


def create_object(kind: str, name: str, path: Path, stack: str) -> None:
    """A secret or config, labelled like ``docker stack deploy`` labels its own."""
    if inspect(kind, name) is not None:
        return
    must(
        kind,
        "create",
        "--label",
        f"com.docker.stack.namespace={stack}",
        name,
        str(path),
        what=f"creating {kind} {name}",
    )


def service_names(stack: str) -> list[str]:
    out = must(
        "stack", "services", "--format", "{{.Name}}", stack, what=f"listing services of {stack}"
    )
    return out.split()


def args_for(options: Sequence[tuple[str, str]]) -> list[str]:
    return [part for flag, value in options for part in (flag, value)]
