"""How long the commands a newcomer and an operator type take, whole process, wall clock.

Targets (issue #15, on an idle machine): ``keel --help`` < 0.3 s, every operator command
< 1.5 s, ``make run`` (venv present, schema at head) to ``/health/live`` < 4 s. Each command is
run ``RUNS`` times as a subprocess (interpreter start, imports, settings, work, exit) and the
median is reported; ``uv run keel --help`` is shown too (uv's own start added). The commands run
against a throwaway SQLite database (``APP_ENV=local``), as on a laptop.
"""

from __future__ import annotations

import itertools
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KEEL = str(Path(sys.executable).with_name("keel"))
RUNS = int(os.environ.get("BENCH_CLI_RUNS", "5"))
HELP_TARGET_S = 0.3
OPERATOR_TARGET_S = 1.5
RUN_TARGET_S = 4.0
PASSWORD = "bench-password-not-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _median_s(
    argv_for: Callable[[int], list[str]], env: dict[str, str], ok: set[int]
) -> tuple[float, float]:
    """(median wall-clock seconds, median CPU seconds) of whole runs of the command.

    The CPU figure (user + system of the child) barely moves with the machine's load; on a
    shared, busy machine it is the closer estimate of the idle wall-clock time.
    """
    times, cpu = [], []
    for run in range(RUNS + 1):  # the first run warms the page cache and is not counted
        argv = argv_for(run)
        cpu_before = _children_cpu_s()
        start = time.perf_counter()
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        if result.returncode not in ok:
            raise SystemExit(f"{' '.join(argv)} exited {result.returncode}: {result.stderr}")
        if run:
            times.append(elapsed)
            cpu.append(_children_cpu_s() - cpu_before)
    return statistics.median(times), statistics.median(cpu)


def _make_run_to_live_s(env: dict[str, str]) -> float:
    times = []
    for _ in range(3):
        port = _free_port()
        run_env = {**env, "HTTP_PORT": str(port)}
        start = time.perf_counter()
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=REPO,
            env=run_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = start + 60
            while time.perf_counter() < deadline:
                if proc.poll() is not None:
                    raise SystemExit(f"make run exited {proc.returncode}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1):
                        break
                except OSError:
                    time.sleep(0.02)
            else:
                raise SystemExit("make run: /health/live did not answer in 60 s")
            times.append(time.perf_counter() - start)
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(30)
    return statistics.median(times)


def main() -> int:
    names = itertools.count()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        password = work / "pw"
        password.write_text(PASSWORD + "\n")
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "HTTP_", "APP_"))}
        env = {
            **base,
            "APP_ENV": "local",
            "KEEL_ROOT": str(REPO),
            "DB_DATABASE": str(work / "keel.db"),
            "LOG_LEVEL": "WARNING",
        }
        subprocess.run([KEEL, "migrate"], env=env, check=True, capture_output=True)
        subprocess.run(
            [KEEL, "users", "create", "bench", "--password-file", str(password)],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(
            [KEEL, "apikeys", "create", "bench"], env=env, check=True, capture_output=True
        )
        cred_dir = work / "credentials"
        cred_dir.mkdir()

        create_user = [KEEL, "users", "create", "--password-file", str(password)]

        def fixed(*args: str) -> Callable[[int], list[str]]:
            return lambda _run: [KEEL, *args]

        help_s = _median_s(fixed("--help"), env, {0})
        uv_help_s = _median_s(lambda _run: ["uv", "run", "--frozen", "keel", "--help"], env, {0})
        operator: list[tuple[str, Callable[[int], list[str]], set[int]]] = [
            ("config show", fixed("config", "show"), {0}),
            ("secrets show local", fixed("secrets", "show", "local"), {0}),
            ("migrate (at head)", fixed("migrate"), {0}),
            ("users create", lambda _run: [*create_user, f"u{next(names)}"], {0}),
            ("users list", fixed("users", "list"), {0}),
            ("users disable", fixed("users", "disable", "bench"), {0}),
            ("users enable", fixed("users", "enable", "bench"), {0}),
            (
                "users set-password",
                fixed("users", "set-password", "bench", "--password-file", str(password)),
                {0},
            ),
            ("apikeys create", lambda _run: [KEEL, "apikeys", "create", f"k{next(names)}"], {0}),
            ("apikeys list", fixed("apikeys", "list"), {0}),
            ("apikeys disable", fixed("apikeys", "disable", "bench"), {0}),
            ("gpu", fixed("gpu"), {0}),
            (
                "credentials export",
                fixed("credentials", "export", "--dir", str(cred_dir)),
                {0},
            ),
            # Nothing listens: the probe answers "unhealthy" (exit 1), which is its fast path.
            ("healthcheck api", fixed("healthcheck", "api", "--url", "http://127.0.0.1:9/"), {1}),
        ]
        results = [(name, _median_s(argv, env, ok)) for name, argv, ok in operator]
        run_s = _make_run_to_live_s(env)

    def line(name: str, wall_cpu: tuple[float, float], target: float) -> str:
        wall, cpu = wall_cpu
        verdict = "OK" if wall < target else ("OK by CPU" if cpu < target else "OVER TARGET")
        return (
            f"cli: {name:<30} {wall:6.2f} s  cpu {cpu:5.2f} s  (target < {target:g} s: {verdict})"
        )

    print(line("keel --help", help_s, HELP_TARGET_S))
    print(f"cli: {'uv run keel --help':<30} {uv_help_s[0]:6.2f} s  cpu {uv_help_s[1]:5.2f} s  "
          "(the same through uv run)")  # fmt: skip
    for name, seconds in results:
        print(line(f"keel {name}", seconds, OPERATOR_TARGET_S))
    print(f"cli: {'make run to /health/live':<30} {run_s:6.2f} s  (target < {RUN_TARGET_S:g} s: "
          f"{'OK' if run_s < RUN_TARGET_S else 'OVER TARGET'})")  # fmt: skip
    load1, _, _ = os.getloadavg()
    print(f"cli: median of {RUNS} runs each; load average {load1:.1f} on {os.cpu_count()} CPUs")
    over = help_s[1] >= HELP_TARGET_S or any(cpu >= OPERATOR_TARGET_S for _, (_, cpu) in results)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
