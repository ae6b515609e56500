"""A login flood vs /health/live: does password hashing stall the worker? (#14 defect 4)

One Granian worker on real PostgreSQL + Redis. wrk floods POST /api/auth/login (a new unknown
username every request: every one costs a full Argon2id verification, none is throttled per
account) on FLOOD_CONNECTIONS connections while a second wrk measures /health/live on 4
connections. Reported: /health/live p50/p99 idle and under the flood, and the flood's own
rate and non-2xx count (429/503 from the throttles and the hashing pool's queue).

BENCH_SRC=/path/to/other/src runs the server from another checkout's ``src`` (e.g. the code
before the fix: ``git archive <commit> src | tar -x -C /tmp/before``) for a before/after figure.
The machine's load average is printed with the figures: on a shared machine it moves them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backing import keel_env, postgres_and_redis
from loadgen import GRANIAN, LoadResult, free_port, running, wrk

SECONDS = int(os.environ.get("BENCH_SECONDS", "6"))
FLOOD_CONNECTIONS = int(os.environ.get("BENCH_FLOOD_CONNECTIONS", "8"))
FLOOD_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local body = '{"username": "flood' .. math.random(1, 1000000000) ..
               '", "password": "not the password at all"}'
  return wrk.format(nil, nil, nil, body)
end
"""


def keel(args: list[str], env: dict[str, str]) -> None:
    keel_bin = str(Path(sys.executable).with_name("keel"))
    done = subprocess.run([keel_bin, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"keel {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="keel-bench-flood-"))
    with postgres_and_redis(work / "redis") as backing:
        run(backing, work)


def run(backing: dict[str, str], work: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = keel_env(
        backing,
        {
            "LOG_LEVEL": "WARNING",
            "HTTP_ACCESS_LOG": "false",
            "HTTP_PORT": str(port),
            # The flood must reach the hash: no per-address cap (nginx would have one in prod).
            "AUTH_LOGIN_PER_IP_PER_MINUTE": "1000000",
        },
    )
    keel(["migrate"], env)
    server_env = dict(env)
    source = os.environ.get("BENCH_SRC")
    if source:
        server_env["PYTHONPATH"] = str(Path(source).resolve())
    script = work / "flood.lua"
    script.write_text(FLOOD_SCRIPT)
    cmd = [*GRANIAN, "--port", str(port), "--factory", "keel.app:app_factory"]
    with running(cmd, f"{base}/health/live", server_env):
        wrk(f"{base}/health/live", seconds=1, connections=4)  # warm up
        idle = wrk(f"{base}/health/live", seconds=SECONDS, connections=4)
        flood: dict[str, LoadResult] = {}

        def drive() -> None:
            flood["login"] = wrk(
                f"{base}/api/auth/login",
                seconds=SECONDS + 2,
                connections=FLOOD_CONNECTIONS,
                script=str(script),
            )

        flooder = threading.Thread(target=drive)
        flooder.start()
        loaded = wrk(f"{base}/health/live", seconds=SECONDS, connections=4)
        flooder.join()
    print(f"server code: {source or 'this checkout'}; load average {load_average()}")
    print(idle.line("/health/live idle"))
    print(loaded.line(f"/health/live, {FLOOD_CONNECTIONS}-conn login flood"))
    print(flood["login"].line("login flood (POST /api/auth/login)"))
    print(
        json.dumps(
            {
                "live_p99_idle_ms": idle.p99_ms,
                "live_p99_flood_ms": loaded.p99_ms,
                "flood_logins_per_s": round(flood["login"].requests_per_second, 1),
                "flood_non_2xx": flood["login"].non_2xx,
            }
        )
    )


if __name__ == "__main__":
    main()
