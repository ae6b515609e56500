"""What metrics cost: /health/live and POST /api/jobs with METRICS_ENABLED=true and =false.

`keel serve` (1 Granian worker, 1 runtime thread) against its own PostgreSQL and Redis, the
same settings both ways; with metrics on, /metrics is scraped every 5 s during the load (a
harsher interval than Prometheus' 15 s). Runs alternate off/on BENCH_ROUNDS times (default 3)
so a machine busy with other work skews both sides alike, and each side's best run is printed
(the highest req/s, the lowest server CPU per request: interference only ever makes a run
worse). Then the in-process cost of the app's ASGI call for /health/live with and without the
metrics observer, best of many alternating rounds, which no other load on the host can inflate.
Every run starts from an empty jobs table and Redis. Budget from issue #17: at most ~5 % off
throughput. BENCH_SECONDS (default 5) per run; BENCH_SCRAPE=0 leaves /metrics unscraped.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from backing import (  # noqa: E402
    bench_token,
    keel_settings,
    postgres_and_redis,
    signing_api_env,
)
from loadgen import LoadResult, free_port, group_cpu_seconds, running, wrk  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
KEEL = str(Path(sys.executable).with_name("keel"))


def _scraper(port: int, stop: threading.Event) -> None:
    while not stop.wait(5):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                r.read()
        except OSError:
            pass


Measured = tuple[LoadResult, float]  # wrk's figures, server CPU µs per request


def _measure(pgid: int, load: Any) -> Measured:
    before = group_cpu_seconds(pgid)
    result: LoadResult = load()
    used = group_cpu_seconds(pgid) - before
    requests = result.requests_per_second * SECONDS
    return result, 1e6 * used / requests if requests else float("nan")


def _reset(env: dict[str, str]) -> None:
    """Every run starts from an empty jobs table and Redis: earlier runs' rows must not make a
    later run's inserts slower (that would favour whichever side runs first)."""
    import redis
    from sqlalchemy import text

    from keel.db.engine import sqlalchemy_config

    async def truncate() -> None:
        engine = sqlalchemy_config(keel_settings(env), one_shot=True).get_engine()
        try:
            async with engine.begin() as conn:
                await conn.execute(text("TRUNCATE jobs"))
        finally:
            await engine.dispose()

    asyncio.run(truncate())
    client = redis.Redis(host="127.0.0.1", port=int(env["REDIS_PORT"]))
    client.flushall()
    client.close()


def _run(env: dict[str, str], enabled: bool, auth: str, script: str) -> tuple[Measured, ...]:
    _reset(env)
    port, metrics_port = free_port(), free_port()
    run_env = {
        **env,
        "HTTP_PORT": str(port),
        "METRICS_ENABLED": "true" if enabled else "false",
        "METRICS_PORT": str(metrics_port),
    }
    base = f"http://127.0.0.1:{port}"
    stop = threading.Event()
    with running([KEEL, "serve"], f"{base}/health/live", run_env) as server:
        if enabled and os.environ.get("BENCH_SCRAPE", "1") == "1":
            threading.Thread(target=_scraper, args=(metrics_port, stop), daemon=True).start()
        try:
            wrk(f"{base}/health/live", seconds=1)  # warm up
            live = _measure(server.pid, lambda: wrk(f"{base}/health/live", seconds=SECONDS))
            post = _measure(
                server.pid,
                lambda: wrk(f"{base}/api/jobs", seconds=SECONDS, headers=[auth], script=script),
            )
        finally:
            stop.set()
    return live, post


def bench(env: dict[str, str]) -> None:
    token = bench_token(env)
    auth = f"Authorization: Bearer {token}"
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.body = \'{"kind": "echo", "payload": {"n": 1}}\'\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    results: dict[bool, list[tuple[Measured, ...]]] = {False: [], True: []}
    for _ in range(ROUNDS):
        for enabled in (False, True):
            results[enabled].append(_run(env, enabled, auth, str(script)))
    for index, label in ((0, "GET /health/live"), (1, "POST /api/jobs (echo)")):

        def best(enabled: bool, pick: Any, index: int = index) -> list[float]:
            return [pick(r[index]) for r in results[enabled]]

        off, on = (max(best(e, lambda m: m[0].requests_per_second)) for e in (False, True))
        cpu_off, cpu_on = (min(best(e, lambda m: m[1])) for e in (False, True))
        print(
            f"{label:<22} off {off:>7,.0f} req/s {cpu_off:6.0f} µs CPU/req   "
            f"on {on:>7,.0f} req/s {cpu_on:6.0f} µs CPU/req   "
            f"throughput {100 * (on - off) / off:+5.1f} %   "
            f"CPU/req {100 * (cpu_on - cpu_off) / cpu_off:+5.1f} %",
            flush=True,
        )
    print(
        f"({ROUNDS} alternating rounds of {SECONDS} s, best of each; CPU = the serve process "
        f"group's user+system time per request; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs; budget: at most ~5 % off)"
    )


def asgi_cost(env: dict[str, str], rounds: int = 15, calls: int = 3000) -> None:
    """µs per in-process ASGI call of GET /health/live, metrics observer off and on."""
    from keel.app import create_app
    from keel.components import build_components

    settings = keel_settings({**env, "METRICS_ENABLED": "true"})
    components = build_components(settings)
    with_metrics = create_app(settings, components=components)
    plain = create_app(settings, components=[c for c in components if c.name != "metrics"])
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/health/live",
        "raw_path": b"/health/live",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    async def timed(app: Any) -> float:
        began = time.perf_counter()
        for _ in range(calls):
            await app({**scope, "state": {}}, receive, send)
        return 1e6 * (time.perf_counter() - began) / calls

    async def run() -> tuple[float, float]:
        off, on = [], []
        for _ in range(rounds):
            off.append(await timed(plain))
            on.append(await timed(with_metrics))
        return min(off), min(on)

    off, on = asyncio.run(run())
    print(
        f"{'ASGI call /health/live':<22} off {off:6.1f} µs   on {on:6.1f} µs   "
        f"+{on - off:.1f} µs per request (in process, best of {rounds} x {calls})"
    )


def main() -> None:
    with postgres_and_redis(Path(tempfile.mkdtemp(prefix="keel-bench-redis-"))) as backing:
        env = {**signing_api_env(backing), "HTTP_WORKERS": "1", "HTTP_RUNTIME_THREADS": "1"}
        from keel.db.migrate import migrate

        asyncio.run(migrate(keel_settings(env)))
        bench(env)
        asgi_cost(env)


if __name__ == "__main__":
    main()
