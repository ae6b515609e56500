"""HTTP stack cost: Keel's /health/live vs a bare Litestar app, same Granian settings, 1 worker.

Target: Keel's middleware (request id, access log, CORS) costs <= 15 % of the bare figure.
Also: keel.config.load() time (target < 50 ms).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import GRANIAN, free_port, running, wrk


def bench_config_load() -> None:
    from keel.config import load

    samples = []
    for _ in range(50):
        began = time.perf_counter()
        load("local")
        samples.append((time.perf_counter() - began) * 1000)
    print(
        f"keel.config.load('local'): median {statistics.median(samples):.2f} ms, "
        f"max {max(samples):.2f} ms (target < 50 ms)"
    )


def main() -> None:
    bench_config_load()
    root = Path(__file__).resolve().parent.parent
    env = {
        "APP_ENV": "local",
        "LOG_FORMAT": "json",
        "DEBUG": "false",
        "KEEL_ROOT": str(root),
        "LOG_LEVEL": "INFO",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}/health/live"
    cmd = [*GRANIAN, "--port", str(port), "--factory", "keel.app:app_factory"]
    # stdout (the JSON access log) goes to /dev/null: the formatting cost stays in.
    with running(cmd, url, env):
        wrk(url, seconds=1)
        keel = wrk(url)
    port = free_port()
    url = f"http://127.0.0.1:{port}/health/live"
    with running(
        [*GRANIAN, "--port", str(port), "bare_app:app"],
        url,
        {"PYTHONPATH": str(Path(__file__).parent)},
    ):
        wrk(url, seconds=1)
        bare = wrk(url)
    env_no_log = {**env, "HTTP_ACCESS_LOG": "false"}
    port = free_port()
    url = f"http://127.0.0.1:{port}/health/live"
    cmd = [*GRANIAN, "--port", str(port), "--factory", "keel.app:app_factory"]
    with running(cmd, url, env_no_log):
        wrk(url, seconds=1)
        quiet = wrk(url)
    print(bare.line("bare Litestar /health/live"))
    print(keel.line("keel /health/live (access log on)"))
    print(quiet.line("keel /health/live (access log off)"))
    cost = 1 - keel.requests_per_second / bare.requests_per_second
    quiet_cost = 1 - quiet.requests_per_second / bare.requests_per_second
    print(
        f"middleware cost vs bare: {cost * 100:.1f} % (target <= 15 %); "
        f"without the access log: {quiet_cost * 100:.1f} %"
    )


if __name__ == "__main__":
    main()
