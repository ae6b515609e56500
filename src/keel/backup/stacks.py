"""The two places a restore happens around: a local PostgreSQL, or a Compose stack."""

from __future__ import annotations

import asyncio
import json

from keel.backup.aftercare import AFTERCARE_MARK
from keel.backup.errors import BackupError
from keel.backup.restore import Log, Stack
from keel.backup.tools import ComposeTools, run_text
from keel.config import Settings

# Services that use the database; stopped and removed before a --replace swap.
_APP_SERVICES = ("proxy", "api", "worker", "worker-gpu")


class LocalStack(Stack):
    """PostgreSQL (and Redis) outside Docker; the operator runs serve/worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def stop_apps(self, log: Log) -> None:
        log("stop `keel serve` and `keel worker` first: their connections are closed now")

    def finish(self, log: Log, reset_sessions: bool) -> list[str]:
        from keel.backup.aftercare import aftercare
        from keel.db.migrate import migrate

        outcome = asyncio.run(migrate(self.settings))
        lines = [f"migrate: {outcome.describe()}"]
        report = asyncio.run(aftercare(self.settings, reset_sessions=reset_sessions))
        lines += report.lines()
        lines.append("start `keel serve` and `keel worker` (or your service units) now")
        return lines


class ComposeStack(Stack):
    """``containers/compose.sh`` for ``ENV``: datastores first, the app after the restore."""

    def __init__(self, tools: ComposeTools) -> None:
        self.tools = tools

    def _action(self, *args: str, timeout: float = 600) -> str:
        return run_text(self.tools.action(*args), timeout=timeout)

    def prepare(self, log: Log) -> None:
        log(f"starting postgres and redis of {self.tools.project}")
        self._action("up", "postgres", "redis")

    def stop_apps(self, log: Log) -> None:
        services = set(run_text(self.tools.compose("config", "--services")).split())
        present = [s for s in _APP_SERVICES if s in services]
        log(f"stopping {', '.join(present)} (they use the database being replaced)")
        run_text(self.tools.compose("rm", "-s", "-f", *present), timeout=180)

    def finish(self, log: Log, reset_sessions: bool) -> list[str]:
        log("migrating to head")
        self._action("up", "migrate")
        log("aftercare: jobs and sessions (in a one-off worker container)")
        args = ["after-restore", "--json"]
        if not reset_sessions:
            args.append("--keep-sessions")
        output = run_text(
            self.tools.compose("run", "--rm", "--no-deps", "-T", "worker", *args), timeout=300
        )
        report = [line for line in output.splitlines() if line.startswith(AFTERCARE_MARK)]
        try:
            lines: list[str] = json.loads(report[-1][len(AFTERCARE_MARK) :])["lines"]
        except (ValueError, KeyError, IndexError):
            raise BackupError(f"aftercare printed no report: {output[-300:]!r}") from None
        log("starting the stack")
        self._action("up")
        lines.append(f"{self.tools.project}: every service healthy (/health/ready is green)")
        return lines
