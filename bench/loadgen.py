"""Start a server, wait for it, drive it with wrk, parse req/s and p99. Shared by bench scripts."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def granian(workers: int = 1) -> list[str]:
    """Granian as every benchmark runs it: ``workers`` processes, one runtime thread each,
    uvloop (then --port ...)."""
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--loop",
        "uvloop",
        "--workers",
        str(workers),
        "--runtime-threads",
        "1",
        "--backlog",
        "1024",
    ]


GRANIAN = granian(1)


@dataclass(frozen=True)
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int

    def line(self, label: str) -> str:
        return (
            f"{label:<34} {self.requests_per_second:>10,.0f} req/s   p50 {self.p50_ms:6.2f} ms"
            f"   p99 {self.p99_ms:6.2f} ms   non-2xx {self.non_2xx}"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


@contextmanager
def running(
    cmd: Sequence[str], url: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_http(url)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _stat_fields(stat: Path) -> list[str] | None:
    """The fields of a /proc/<pid>/stat after the process name (state, ppid, pgrp, ...), or
    None for a process that is gone."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _group_members(pgid: int) -> Iterator[tuple[Path, list[str]]]:
    """(its /proc folder, its stat fields) for each live process in the process group."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat_fields(stat)
        if fields is not None and int(fields[2]) == pgid:
            yield stat.parent, fields


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) of every live process in a process group, from /proc."""
    ticks = sum(int(fields[11]) + int(fields[12]) for _, fields in _group_members(pgid))
    return ticks / os.sysconf("SC_CLK_TCK")


def server_pid(name: str, port: int) -> int | None:
    """The pid of the ``name`` server (postgres, redis-server) listening on ``port``, found by
    its command line."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        joined = b" ".join(args)
        # Redis retitles itself "redis-server 127.0.0.1:<port>" (one argument).
        if args and Path(joined.split(b" ")[0].decode(errors="replace")).name == name:
            wanted = (f"-p {port}", f"--port {port}", f":{port}")
            if any(text.encode() in joined for text in wanted):
                return int(cmdline.parent.name)
    return None


def tree_cpu_seconds(root: int) -> float:
    """CPU time of a process and all its live descendants (a server's backends), plus what its
    exited children used (the root's cutime/cstime: PostgreSQL reaps its backends), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat_fields(stat)
        if fields is None:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        times[pid] = int(fields[11]) + int(fields[12])
        if pid == root:  # children it waited for: utime, stime, cutime, cstime at 11..14
            times[pid] += int(fields[13]) + int(fields[14])
    total = 0
    for pid, used in times.items():
        current = pid
        while current not in (0, 1) and current != root:
            current = parents.get(current, 0)
        if current == root:
            total += used
    return total / tick


def group_rss_mib(pgid: int) -> list[float]:
    """Resident memory (MiB) of each live process in a process group, from /proc."""
    sizes: list[float] = []
    for folder, _ in _group_members(pgid):
        try:
            status = (folder / "status").read_text()
        except OSError:
            continue
        sizes += [
            int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")
        ]
    return sorted(sizes)


def machine_line() -> str:
    """The load average and CPU count, printed next to every figure that depends on them."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def wrk(
    url: str,
    *,
    seconds: int = 5,
    connections: int = 32,
    headers: Sequence[str] = (),
    script: str | None = None,
) -> LoadResult:
    """wrk (a C client: one thread, ``connections`` connections) for ``seconds``."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for header in headers:
        cmd += ["-H", header]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))

    def parse(text: str) -> float:
        match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
        return _ms(match.group(1), match.group(2)) if match else float("nan")

    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return LoadResult(
        rps,
        parse(latency.get("50", "nan")),
        parse(latency.get("99", "nan")),
        int(non_2xx.group(1)) if non_2xx else 0,
    )
