"""Drive the three-node test swarm (containers/swarm/) from tests and benchmarks.

All traffic stays on the cluster's own network: the load generator (wrk) and curl run in the
switch namespace (198.51.100.254), the proxy listens on node 1 (198.51.100.1:8080).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "containers" / "swarm" / "cluster.sh"
IMAGES_SH = REPO / "containers" / "swarm" / "images.sh"
DOCKER = "/usr/bin/docker"
HOST_DAEMON = "unix:///var/run/docker.sock"  # builds and holds the images (containers/dockerd.sh)
KEEL = str(Path(sys.executable).with_name("keel"))
PROXY_HOST = "198.51.100.1"  # node 1, where the proxy publishes its port
PROXY = f"http://{PROXY_HOST}:8080"
STACK = "keel-prod"
LOCAL_IMAGE = os.environ.get("KEEL_IMAGE", "keel:latest")
OFFLINE = os.environ.get("KEEL_OFFLINE_PREFIX", "keel-offline")
SERVICE_IMAGES = {
    "POSTGRES_IMAGE": f"{OFFLINE}/postgres:15",
    "REDIS_IMAGE": f"{OFFLINE}/redis:7",
    "NGINX_IMAGE": f"{OFFLINE}/nginx:1.22",
}
USER = ("swarm-user", "swarm-password-not-secret-42")
CONNECTIONS = 4  # wrk -c: the load's concurrency
WRK_SCRIPT = REPO / "tests" / "swarm" / "jobs.lua"
T = TypeVar("T")


def missing_prerequisites() -> str | None:
    """None when this machine can run the test swarm, else what it lacks (for the skip)."""
    if os.geteuid() != 0:
        return "root (network namespaces and per-node dockerd)"
    for tool in ("ip", "nsenter", "dockerd", DOCKER, "wrk"):
        if shutil.which(tool) is None:
            return f"{tool} (apt-get install iproute2 util-linux docker.io wrk)"
    probe = subprocess.run(
        [DOCKER, "-H", HOST_DAEMON, "image", "inspect", LOCAL_IMAGE],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"the app image {LOCAL_IMAGE} on the host daemon (containers/build.sh all)"
    return None


def run(argv: list[str], *, timeout: float = 300, check: bool = True, **kw: Any) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv[:6])} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def wait_for(what: str, check: Callable[[], T | None], timeout: float, poll: float = 1) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


class Cluster:
    def __init__(self, nodes: int = 3) -> None:
        self.nodes = nodes

    def sh(self, *args: str, timeout: float = 300) -> str:
        return run([str(CLUSTER_SH), *args], timeout=timeout)

    def up(self) -> None:
        self.sh("up")
        run([str(REPO / "containers" / "build.sh"), "registry"])
        run([str(IMAGES_SH), "registry"])

    def host(self, node: int) -> str:
        return f"unix:///run/ksw/{node}.sock"

    def docker(self, node: int, *args: str, timeout: float = 120, check: bool = True) -> str:
        return run([DOCKER, "-H", self.host(node), *args], timeout=timeout, check=check)

    def client(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CLUSTER_SH), "client", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def node_of(self, task_node: str) -> int:
        return int(task_node.removeprefix("ksw"))

    def ready_nodes(self) -> int:
        out = self.docker(1, "node", "ls", "--format", "{{.Status}}")
        return out.split().count("Ready")


def push(*images: str) -> list[str]:
    """Registry references (REGISTRY/NAME:ID) of the host's images, pushed to the cluster."""
    out = run([str(IMAGES_SH), "push", *images], timeout=600)
    return out.split()


def derived_image(base: str, tag: str, env: dict[str, str] | None = None) -> str:
    """A new release of ``base`` (a label makes a new image id); ``env`` can break it on purpose."""
    lines = [f"FROM {base}", f"LABEL org.keel.test-release={tag}"]
    lines += [f"ENV {key}={value}" for key, value in (env or {}).items()]
    name = f"keel-swarm-test:{tag}"
    build = [DOCKER, "-H", HOST_DAEMON, "build", "-q", "-t", name, "-"]
    run(build, input="\n".join(lines) + "\n")
    return name


@dataclass
class Deployment:
    """A deployment checkout (compose files, configs, a prod key and secrets made for the test)."""

    root: Path
    key: Path
    images: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, tmp: Path) -> Deployment:
        root = tmp / "repo"
        (root / "secrets").mkdir(parents=True)
        for name in ("compose.yaml", "compose.gpu.yaml"):
            shutil.copy(REPO / name, root / name)
        shutil.copytree(REPO / "configs", root / "configs")
        key = tmp / "keys" / "prod.agekey"
        key.parent.mkdir()
        run([KEEL, "secrets", "init", "prod", "--root", str(root), "--key-file", str(key)])
        # The one timing tuned for the tests: a dead worker's messages are reclaimed after
        # 20 s instead of 300 s (echo jobs take milliseconds; docs/cluster.md, "Lose a node").
        # And the host name the tests use: the proxy's address (prod refuses other Host headers,
        # as an operator's ALLOWED_HOSTS names their domain).
        app_env = root / "configs" / "prod" / "app.env"
        text = re.sub(
            r"^ALLOWED_HOSTS=(.*)$",
            rf"ALLOWED_HOSTS=\1,{PROXY_HOST}",
            app_env.read_text(),
            count=1,
            flags=re.MULTILINE,
        )
        app_env.write_text(text + "WORKER_IDLE_TIMEOUT=20\n")
        return cls(root, key)

    def env(self) -> dict[str, str]:
        key = str(self.key)
        return {**os.environ, **self.images, "KEEL_AGE_KEY_FILE": key, "SOPS_AGE_KEY_FILE": key}

    def keel(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KEEL, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=self.env(),
            cwd=self.root,
        )

    def deploy(self, app_image: str, timeout: float = 600) -> tuple[int, str, float]:
        """``keel stack deploy prod`` of ``app_image``; it stays the release only on success."""
        previous = self.images.get("KEEL_IMAGE", app_image)
        self.images["KEEL_IMAGE"] = app_image
        started = time.monotonic()
        done = self.keel("stack", "deploy", "prod", "--root", str(self.root), timeout=timeout)
        if done.returncode != 0:
            self.images["KEEL_IMAGE"] = previous
        return done.returncode, done.stdout + done.stderr, time.monotonic() - started


@dataclass(frozen=True)
class LoadResult:
    requests: int
    accepted: int
    other_status: int
    connect: int
    read: int
    write: int
    timeout: int
    status_errors: int
    seconds: float
    p99_ms: float
    ids: tuple[int, ...] = ()  # the accepted jobs (202), from the response bodies

    @property
    def failed(self) -> int:
        return self.other_status + self.connect + self.read + self.write + self.timeout

    def __str__(self) -> str:
        return (
            f"{self.requests} requests in {self.seconds:.0f} s, {self.accepted} jobs accepted, "
            f"{self.failed} failed (status {self.other_status}, connect {self.connect}, "
            f"read {self.read}, write {self.write}, timeout {self.timeout}), p99 {self.p99_ms} ms"
        )


class Load:
    """wrk submitting echo jobs through the proxy for a bounded time, from the client host."""

    def __init__(self, cluster: Cluster, token: str, seconds: int, delay_ms: int = 50) -> None:
        self.ids_dir = Path(tempfile.mkdtemp(prefix="keel-wrk-ids-"))
        self.proc = subprocess.Popen(
            [
                str(CLUSTER_SH),
                "client",
                "wrk",
                "-t2",
                f"-c{CONNECTIONS}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(WRK_SCRIPT),
                PROXY,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={
                **os.environ,
                "KEEL_TOKEN": token,
                "WRK_DELAY_MS": str(delay_ms),
                "WRK_IDS_DIR": str(self.ids_dir),
            },
        )
        self.seconds = seconds

    def result(self) -> LoadResult:
        out, err = self.proc.communicate(timeout=self.seconds + 60)
        match = re.search(r"^WRK_RESULT (\{.*\})$", out, re.MULTILINE)
        assert match, f"wrk printed no result (exit {self.proc.returncode}): {out} {err}"
        ids = [
            int(line)
            for path in sorted(self.ids_dir.glob("ids-*"))
            for line in path.read_text().split()
            if line.isdigit()
        ]
        shutil.rmtree(self.ids_dir, ignore_errors=True)
        return LoadResult(**json.loads(match.group(1)), ids=tuple(ids))


class Jobs:
    """The jobs table, read in PostgreSQL itself (the source of truth for "ran once")."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def _psql(self, sql: str) -> str:
        # On stdin, not argv: a query naming thousands of job ids is longer than one command-line
        # argument may be (MAX_ARG_STRLEN, 128 KiB).
        node, container = running_container(self.cluster, "postgres")
        argv = [DOCKER, "-H", self.cluster.host(node), "exec", "-i", container]
        return run(
            [*argv, "psql", "-U", "keel", "-d", "keel", "-tA", "-v", "ON_ERROR_STOP=1", "-f", "-"],
            input=sql.rstrip().rstrip(";") + ";\n",
            timeout=120,
        ).strip()

    def high_water(self) -> int:
        return int(self._psql("select coalesce(max(id), 0) from jobs"))

    def since(self, after_id: int) -> dict[str, int]:
        rows = self._psql(f"select status, count(*) from jobs where id > {after_id} group by 1")
        return {
            status: int(count)
            for status, count in (line.split("|") for line in rows.splitlines() if line)
        }

    def statuses(self, ids: tuple[int, ...]) -> dict[str, int]:
        """Status counts of exactly these jobs (missing ones count as "missing")."""
        if not ids:
            return {}
        array = "{" + ",".join(str(i) for i in ids) + "}"
        rows = self._psql(f"select status, count(*) from jobs where id = any('{array}') group by 1")
        counts = {
            status: int(count)
            for status, count in (line.split("|") for line in rows.splitlines() if line)
        }
        found = sum(counts.values())
        if found < len(set(ids)):
            counts["missing"] = len(set(ids)) - found
        return counts

    def wait_succeeded(self, ids: tuple[int, ...], timeout: float = 180) -> dict[str, int]:
        """Poll until none of ``ids`` is queued or running; their final status counts."""

        def settled() -> dict[str, int] | None:
            counts = self.statuses(ids)
            return None if {"queued", "running"} & set(counts) else counts

        return wait_for("the accepted jobs to finish", settled, timeout, poll=2)

    def max_attempts(self, after_id: int) -> int:
        return int(self._psql(f"select coalesce(max(attempts), 0) from jobs where id > {after_id}"))

    def wait_finished(self, after_id: int, timeout: float = 180) -> dict[str, int]:
        def finished() -> dict[str, int] | None:
            counts = self.since(after_id)
            busy = {k: v for k, v in counts.items() if k in ("queued", "running")}
            return None if busy else counts

        return wait_for("every submitted job to finish", finished, timeout, poll=2)


def running_container(cluster: Cluster, service: str) -> tuple[int, str]:
    """(node number, container name) of the stack ``service``'s first running task."""
    line = cluster.docker(
        1,
        "service",
        "ps",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Node}} {{.Name}}.{{.ID}}",
        "--no-trunc",
        f"{STACK}_{service}",
    ).split("\n")[0]
    node, name = line.split()
    return cluster.node_of(node), name


def login(cluster: Cluster) -> str:
    """Create the test user in an api task (keel users create) and log in through the proxy."""
    node_name, container = running_container(cluster, "api")
    subprocess.run(
        [
            *(DOCKER, "-H", cluster.host(node_name), "exec", "-i", container, "keel", "users"),
            *("create", USER[0], "--password-file", "-"),
        ],
        input=USER[1] + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    body = json.dumps({"username": USER[0], "password": USER[1]})
    done = cluster.client(
        "curl",
        "-sS",
        "-m",
        "10",
        "-H",
        "Content-Type: application/json",
        "-d",
        body,
        f"{PROXY}/api/auth/login",
    )
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["access_token"])


def http_status(cluster: Cluster, path: str) -> int:
    done = cluster.client(
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5", PROXY + path
    )
    return int(done.stdout or 0)


def task_nodes(cluster: Cluster, service: str) -> list[str]:
    out = cluster.docker(
        1,
        "service",
        "ps",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Node}} {{.CurrentState}}",
        f"{STACK}_{service}",
    )
    return [line.split()[0] for line in out.splitlines() if " Running" in line]


def remove_stack_volumes(cluster: Cluster) -> None:
    """The stack's named volumes on every node (they outlive `keel stack rm` by design)."""
    for node in range(1, cluster.nodes + 1):

        def gone(node: int = node) -> bool:
            names = cluster.docker(
                node, "volume", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={STACK}"
            ).split()
            if names:
                cluster.docker(node, "volume", "rm", *names, check=False)
            return not names

        wait_for(f"the stack's volumes on node {node} to go", gone, 60)


def names_resolve(cluster: Cluster, node: int, image: str, *names: str) -> bool:
    """Whether a container on ``node``, on the stack's network, resolves ``names``: a rejoined
    node's overlay and service discovery work again before the next test puts tasks there."""
    script = "import socket, sys; [socket.gethostbyname(n) for n in sys.argv[1:]]"
    argv = [DOCKER, "-H", cluster.host(node), "run", "--rm", "--network", f"{STACK}_default"]
    argv += ["--entrypoint", "/app/.venv/bin/python", image, "-c", script, *names]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode == 0
