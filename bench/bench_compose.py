"""The Compose stack (ENV=test): up-to-healthy times, app image size, api/worker memory.

1. Cold: `make down ENV=test` (volumes too), then `make up ENV=test` until every service is
   healthy (images already built: this times the stack, not the build).
2. Warm: every container stopped, then `make up ENV=test` again (same containers and volumes).
3. The app image's size.
4. RSS of api and worker at idle, then while wrk submits echo jobs through the API for 10 s.
Targets: warm up-to-healthy < 15 s, app image < 200 MB.

Needs Docker with the app and service images (`make image-docker images-offline`, as
`containers/ci-setup.sh` does); without them it says what is missing and measures nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import wrk

ROOT = Path(__file__).resolve().parents[1]
DOCKER = shutil.which("docker") or "/usr/bin/docker"
IMAGE = os.environ.get("KEEL_IMAGE", "keel:latest")
# The test stack publishes the API on HTTP_PORT (configs/test/compose.yaml; default 18000).
API_PORT = int(os.environ.get("HTTP_PORT", "18000"))
WARM_TARGET_S = 15.0
IMAGE_TARGET_MB = 200.0
USER = ("bench", "bench-password-not-secret")


def compose_sh(
    action: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ENV": "test", "KEEL_SKIP_BUILD": "1", "KEEL_IMAGE": IMAGE}
    return subprocess.run(
        ["containers/compose.sh", action, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        input=stdin,
        check=False,
        timeout=600,
    )


def must(result: subprocess.CompletedProcess[str], what: str) -> str:
    if result.returncode != 0:
        raise SystemExit(f"{what} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def timed_up() -> float:
    began = time.monotonic()
    must(compose_sh("up"), "make up ENV=test")
    return time.monotonic() - began


def mebibytes(text: str) -> float:
    """`docker stats` sizes ("148.2MiB", "1.1GiB", "900KiB") in MiB."""
    match = re.fullmatch(r"([\d.]+)\s*([KMG]?i?B)", text.strip())
    if match is None:
        raise ValueError(f"unexpected size from docker stats: {text!r}")
    number, unit = match.groups()
    return float(number) * {"B": 2**-20, "KiB": 2**-10, "KB": 2**-10, "GiB": 1024, "GB": 1024}.get(
        unit, 1.0
    )


def memory() -> dict[str, float]:
    """RSS-like usage (cgroup memory minus page cache, as `docker stats` shows) per service."""
    ids = subprocess.run(
        [DOCKER, "ps", "-q", "--filter", "label=com.docker.compose.project=keel-test"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    stats = subprocess.run(
        [DOCKER, "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *ids],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    usage: dict[str, float] = {}
    for line in stats.splitlines():
        name, used = line.split("\t")
        service = next((s for s in ("api", "worker") if f"_{s}_" in name or f"-{s}-" in name), "")
        if service:
            usage[service] = mebibytes(used.split("/")[0])
    return usage


def token() -> str:
    """A user made the way the runbook says (`keel users create` in the api container)."""
    create = ("exec", "-T", "api", "keel", "users", "create", USER[0], "--password-file", "-")
    compose_sh("exec-compose", *create, stdin=USER[1] + "\n")  # "exists" on a rerun is fine
    login = urllib.request.Request(
        f"http://127.0.0.1:{API_PORT}/api/auth/login",
        data=json.dumps({"username": USER[0], "password": USER[1]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(login, timeout=10) as response:
        return str(json.loads(response.read())["access_token"])


def under_load(bearer: str) -> tuple[dict[str, float], str]:
    script = Path(tempfile.mkdtemp()) / "submit.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.body = \'{"kind": "echo", "payload": {"n": 1}}\'\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {bearer}"\n'
    )
    sampled: dict[str, float] = {}

    def sample() -> None:
        time.sleep(7)
        sampled.update(memory())

    sampler = threading.Thread(target=sample)
    sampler.start()
    result = wrk(
        f"http://127.0.0.1:{API_PORT}/api/jobs", seconds=10, connections=16, script=str(script)
    )
    sampler.join()
    return sampled, result.line("POST /api/jobs during the sample")


def main() -> int:
    missing = []
    if subprocess.run([DOCKER, "info"], capture_output=True, check=False).returncode != 0:
        missing.append("a running Docker daemon")
    elif subprocess.run(
        [DOCKER, "image", "inspect", IMAGE], capture_output=True, check=False
    ).returncode:
        missing.append(f"the app image {IMAGE} (make image-docker)")
    if missing:
        print(f"bench_compose: not measured, needs {', '.join(missing)}")
        return 0
    must(compose_sh("down"), "make down ENV=test")
    cold = timed_up()
    must(compose_sh("exec-compose", "stop"), "compose stop")
    warm = timed_up()
    size_mb = (
        int(
            subprocess.run(
                [DOCKER, "image", "inspect", "--format", "{{.Size}}", IMAGE],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        / 1e6
    )
    try:
        time.sleep(5)
        idle = memory()
        loaded, load_line = under_load(token())
    finally:
        must(compose_sh("down"), "make down ENV=test")
    print(f"cold make up ENV=test to all healthy   {cold:5.1f} s")
    print(
        f"warm (stopped containers) to healthy   {warm:5.1f} s   (target < {WARM_TARGET_S:g} s: "
        f"{'OK' if warm < WARM_TARGET_S else 'MISSED'})"
    )
    print(
        f"app image {IMAGE:<28} {size_mb:5.0f} MB  (target < {IMAGE_TARGET_MB:g} MB: "
        f"{'OK' if size_mb < IMAGE_TARGET_MB else 'MISSED'})"
    )
    for service in ("api", "worker"):
        print(
            f"{service:<6} memory: idle {idle.get(service, 0):5.0f} MiB, "
            f"under load {loaded.get(service, 0):5.0f} MiB"
        )
    print(load_line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
