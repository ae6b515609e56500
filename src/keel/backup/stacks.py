"""The two places a restore happens around: a local PostgreSQL, or a Compose stack."""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
from collections.abc import Callable
from typing import IO

from keel.backup.aftercare import AFTERCARE_MARK
from keel.backup.errors import BackupError
from keel.backup.restore import Log, Stack
from keel.backup.tools import ComposeTools, last_line, run_text
from keel.config import Settings

# Services that use the database; stopped and removed before a --replace swap.
_APP_SERVICES = ("proxy", "api", "worker", "worker-gpu")
# In a one-off redis container on the data volume: the RDB from stdin becomes the data. Redis
# with appendonly ignores a lone RDB, so load it without AOF, switch AOF on (a rewrite from
# memory) and wait for that rewrite before shutting down; the service then starts from the AOF.
_LOAD_RDB = """set -eu
cat > /data/dump.rdb.part
mv /data/dump.rdb.part /data/dump.rdb
rm -rf /data/appendonlydir
sock=/tmp/keel-restore.sock
redis-server --dir /data --appendonly no --save '' --port 0 --unixsocket "$sock" &
pid=$!
i=0; until [ "$(redis-cli -s "$sock" ping 2>/dev/null)" = PONG ]; do
  i=$((i+1)); [ $i -lt 600 ] || { echo "redis did not load the RDB" >&2; exit 1; }; sleep 0.1
done
redis-cli -s "$sock" CONFIG SET appendonly yes >/dev/null
rewriting() {
  redis-cli -s "$sock" INFO persistence | grep -Eq 'rewrite_(in_progress|scheduled):1'
}
i=0; while rewriting || [ ! -d /data/appendonlydir ]; do
  i=$((i+1)); [ $i -lt 600 ] || { echo "AOF rewrite did not finish" >&2; exit 1; }; sleep 0.1
done
keys=$(redis-cli -s "$sock" DBSIZE)
redis-cli -s "$sock" SHUTDOWN >/dev/null 2>&1 || true
wait $pid || true
rm -f /data/dump.rdb
echo "loaded $keys keys"
"""


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

    loads_redis = True

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

    def load_redis(self, feed: Callable[[IO[bytes]], None], log: Log) -> None:
        log("loading the Redis part (redis stopped, its data replaced)")
        run_text(self.tools.compose("rm", "-s", "-f", "redis"), timeout=120)
        call = self.tools.compose(
            "run", "--rm", "--no-deps", "-T", "--entrypoint", "sh", "redis", "-c", _LOAD_RDB
        )
        with tempfile.TemporaryFile() as output:
            process = subprocess.Popen(  # noqa: S603 - argv built in keel.backup.tools
                call.argv, env=call.env, stdin=subprocess.PIPE, stdout=output, stderr=output
            )
            assert process.stdin is not None
            try:
                feed(process.stdin)
            finally:
                process.stdin.close()
            code = process.wait()
            output.seek(0)
            text = output.read().decode("utf-8", "replace")
        if code != 0:
            raise BackupError(
                f"loading the Redis part failed (exit {code}): {last_line(text)}; PostgreSQL is "
                "restored, Redis is empty: run the restore again, or go on without --with-redis"
            )
        lines = [line for line in text.splitlines() if line.startswith("loaded ")]
        log(f"redis: {lines[-1] if lines else 'loaded'}")
        self._action("up", "redis")

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
