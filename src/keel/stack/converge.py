"""Wait until a stack's services have converged and are healthy, or say which one did not.

The 20.10 CLI returns from ``stack deploy`` at once, so this polls. A service is converged when
its update (if any) completed and as many tasks run as it has replicas; Swarm reports a task
as Running only once its healthcheck passed, so "running" here means "healthy". A rollback
or a paused update that started during this wait (its ``StartedAt`` differs from the baseline
taken before the deploy) fails the deploy; an older, finished rollback does not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keel.stack import swarm
from keel.stack.compose_files import StackError

FAILED_UPDATES = {"paused", "rollback_started", "rollback_paused", "rollback_completed"}
IN_PROGRESS = {"updating", "rollback_started", "paused", "rollback_paused"}


@dataclass(frozen=True, slots=True)
class ServiceState:
    name: str
    wanted: int
    running: int
    update: str  # "" when no update is in progress or recorded
    message: str
    tasks: list[swarm.Task]
    last_failure: str = ""
    stale: int = 0  # running tasks of an older spec (the update has not reached them yet)
    started: str = ""  # UpdateStatus.StartedAt: which update the state belongs to

    @property
    def converged(self) -> bool:
        return self.update not in IN_PROGRESS and self.running == self.wanted and not self.stale

    def failed_since(self, baseline: Mapping[str, str]) -> bool:
        return self.update in FAILED_UPDATES and self.started != baseline.get(self.name, "")

    def describe(self) -> str:
        problems = [
            task.describe()
            for task in self.tasks
            if task.error or not task.state.startswith("Running")
        ]
        update = f", update {self.update}" if self.update else ""
        if self.stale:
            update += f", {self.stale} on the old spec"
        message = f" ({self.message})" if self.message and self.update != "completed" else ""
        latest = f"; tasks: {'; '.join(problems[:3])}" if problems else ""
        failure = f"; last failed task: {self.last_failure}" if self.last_failure else ""
        return (
            f"{self.name}: {self.running}/{self.wanted} running{update}{message}{latest}{failure}"
        )


def _after_rollback(names: list[str], deadline: float, poll: float) -> str:
    """Wait for Swarm's automatic rollback to finish, then say where each service stands."""
    while time.monotonic() < deadline:
        states = [service_state(name) for name in names]
        if all(s.update not in ("rollback_started", "updating") for s in states):
            break
        time.sleep(poll)
    states = [service_state(name) for name in names]
    rolled = [s for s in states if s.update.startswith("rollback") or s.update == "paused"]
    done = all(s.update == "rollback_completed" and s.running == s.wanted for s in rolled)
    verdict = "the previous release runs again" if done else "rollback NOT complete"
    return f"update failed, Swarm rolled back ({verdict}): " + " | ".join(
        s.describe() for s in rolled
    )


def _normal(value: Any) -> Any:
    """A spec without empty members and the default runtime: the API omits either on one side."""
    if isinstance(value, dict):
        kept = {key: _normal(item) for key, item in value.items()}
        return {
            key: item
            for key, item in kept.items()
            if item not in (None, {}, [], "") and not (key == "Runtime" and item == "container")
        }
    if isinstance(value, list):
        return [_normal(item) for item in value]
    return value


def service_state(name: str) -> ServiceState:
    spec = swarm.inspect("service", name)
    if spec is None:
        raise StackError(f"service {name} does not exist")
    replicated = spec["Spec"].get("Mode", {}).get("Replicated", {})
    wanted = int(replicated.get("Replicas", 1))
    status = spec.get("UpdateStatus") or {}
    # Right after `stack deploy` the update may not have started (UpdateStatus is reset to
    # null): a task whose spec differs from the service's is not converged, whatever the status.
    template = _normal(spec["Spec"].get("TaskTemplate", {}))
    stale = sum(1 for task in swarm.running_task_specs(name) if _normal(task) != template)
    every = swarm.tasks(name)
    current = [task for task in every if task.desired.lower() == "running"]
    running = sum(1 for task in current if task.state.startswith("Running"))
    # Newest first: why the last replacement died (unhealthy, image missing, exit code).
    failures = [t for t in every if t.desired.lower() != "running" and t.error]
    return ServiceState(
        name=name,
        wanted=wanted,
        running=running,
        update=str(status.get("State", "")),
        message=str(status.get("Message", "")),
        tasks=current,
        last_failure=failures[0].describe() if failures else "",
        stale=stale,
        started=str(status.get("StartedAt", "")),
    )


def baseline(services: Sequence[str]) -> dict[str, str]:
    """Each existing service's current update start, taken before a deploy changes them."""
    found = {}
    for name in services:
        spec = swarm.inspect("service", name)
        if spec is not None:
            found[name] = str((spec.get("UpdateStatus") or {}).get("StartedAt", ""))
    return found


def wait(
    services: Sequence[str],
    *,
    timeout: float,
    poll: float = 1.0,
    progress: Callable[[str], None] | None = None,
    since: Mapping[str, str] | None = None,
) -> dict[str, ServiceState]:
    """Block until every service converged (returns their states) or raise naming the laggards.

    ``since``: the :func:`baseline` before a deploy; a rollback after it fails at once.
    """
    deadline = time.monotonic() + timeout
    last_line = ""
    while True:
        states = {name: service_state(name) for name in services}
        failed = [s for s in states.values() if since is not None and s.failed_since(since)]
        if failed:
            raise StackError(_after_rollback(list(states), deadline, poll))
        pending = [s for s in states.values() if not s.converged]
        if not pending:
            return states
        line = " | ".join(s.describe() for s in pending)
        if progress and line != last_line:
            progress(line)
            last_line = line
        if time.monotonic() > deadline:
            raise StackError(f"not converged after {timeout:.0f} s: {line}")
        time.sleep(poll)


def spec_image(name: str) -> str:
    """The image a service's spec names now (after an update or a rollback)."""
    spec = swarm.inspect("service", name) or {}
    container = spec.get("Spec", {}).get("TaskTemplate", {}).get("ContainerSpec", {})
    return str(container.get("Image", ""))
