"""Wait until a stack's services have converged and are healthy, or say which one did not.

The 20.10 CLI returns from ``stack deploy`` at once, so this polls. A service is converged when
its update (if any) completed and as many tasks run as it has replicas; Swarm reports a task
as Running only once its healthcheck passed, so "running" here means "healthy". A rollback
(``rollback_started``/``rollback_completed``) or a paused update is a failed deploy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from keel.stack import swarm
from keel.stack.compose_files import StackError

FAILED_UPDATES = {"paused", "rollback_started", "rollback_paused", "rollback_completed"}


@dataclass(frozen=True, slots=True)
class ServiceState:
    name: str
    wanted: int
    running: int
    update: str  # "" when no update is in progress or recorded
    message: str
    tasks: list[swarm.Task]
    last_failure: str = ""

    @property
    def converged(self) -> bool:
        return self.update in ("", "completed") and self.running == self.wanted

    @property
    def failed(self) -> bool:
        return self.update in FAILED_UPDATES

    def describe(self) -> str:
        problems = [
            task.describe()
            for task in self.tasks
            if task.error or not task.state.startswith("Running")
        ]
        update = f", update {self.update}" if self.update else ""
        message = f" ({self.message})" if self.message else ""
        latest = f"; tasks: {'; '.join(problems[:3])}" if problems else ""
        failure = f"; last failed task: {self.last_failure}" if self.last_failure else ""
        return (
            f"{self.name}: {self.running}/{self.wanted} running{update}{message}{latest}{failure}"
        )


def service_state(name: str) -> ServiceState:
    spec = swarm.inspect("service", name)
    if spec is None:
        raise StackError(f"service {name} does not exist")
    replicated = spec["Spec"].get("Mode", {}).get("Replicated", {})
    wanted = int(replicated.get("Replicas", 1))
    status = spec.get("UpdateStatus") or {}
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
    )


def wait(
    services: Sequence[str],
    *,
    timeout: float,
    poll: float = 1.0,
    progress: Callable[[str], None] | None = None,
    allow_rollback: bool = False,
) -> dict[str, ServiceState]:
    """Block until every service converged (returns their states) or raise naming the laggards."""
    deadline = time.monotonic() + timeout
    last_line = ""
    while True:
        states = {name: service_state(name) for name in services}
        failed = [s for s in states.values() if s.failed and not allow_rollback]
        if failed:
            raise StackError(
                "update failed and was rolled back or paused: "
                + " | ".join(s.describe() for s in failed)
            )
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
