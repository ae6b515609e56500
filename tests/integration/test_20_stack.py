"""The test overlay end to end: the API as a user calls it, then faults a deployment meets.

Tests that stop or restart Redis/PostgreSQL run last: the ones before need an undisturbed stack.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.integration.stack import Api, Stack, wait_for


def test_jobs_api_end_to_end(api: Api, stack: Stack) -> None:
    ready = httpx.get(f"{api.base_url}/health/ready", timeout=5).json()
    assert ready["status"] == "ok", ready
    assert {"database", "migrations", "redis", "broker"} <= set(ready["checks"])
    assert httpx.get(f"{api.base_url}/health/live", timeout=5).json() == {"status": "ok"}

    # Authentication is required on the jobs API.
    anonymous = httpx.post(f"{api.base_url}/api/jobs", json={"kind": "echo"}, timeout=5)
    assert anonymous.status_code == 401

    accepted = api.submit("echo", {"hello": "world"})
    assert accepted["status"] == "queued"
    assert accepted["queue"] == "default"
    done = api.wait_done(accepted["id"])
    assert done["status"] == "succeeded"
    assert done["result"] == {"hello": "world"}
    assert done["attempts"] == 1
    assert done["worker_id"]

    first = api.submit("echo", idempotency_key="it-abc")
    again = api.submit("echo", idempotency_key="it-abc")
    assert again["id"] == first["id"]
    assert again["created"] is False

    checksum = api.wait_done(api.submit("checksum", {"mebibytes": 2})["id"])
    assert checksum["status"] == "succeeded"
    assert checksum["result"]["mebibytes"] == 2
    assert len(checksum["result"]["sha256"]) == 64

    retried = api.wait_done(api.submit("sleep", {"seconds": 0, "fail_attempts": 1})["id"])
    assert retried["status"] == "succeeded"
    assert retried["attempts"] == 2
    exhausted = api.wait_done(api.submit("sleep", {"seconds": 0, "fail_attempts": 5})["id"])
    assert exhausted["status"] == "failed"
    assert exhausted["attempts"] == 3
    assert "planned failure on attempt 3" in exhausted["error"]

    unknown = api.client.post("/api/jobs", json={"kind": "nope"})
    assert unknown.status_code == 422
    assert "unknown job kind" in unknown.json()["detail"]
    assert api.client.get("/api/jobs/123").status_code == 404
    page = api.client.get("/api/jobs", params={"limit": 2}).json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]

    # The worker's heartbeat, as its container healthcheck reads it.
    check = stack.run("exec", "-T", "worker", "keel", "healthcheck", "worker")
    assert "healthy" in check.stdout
    assert "queues default" in check.stdout


def test_every_container_runs_as_non_root(stack: Stack) -> None:
    containers = stack.containers()
    assert {c.service for c in containers} >= {
        "credentials",
        "postgres",
        "redis",
        "migrate",
        "api",
        "worker",
    }
    for container in containers:
        uid = container.user.split(":", 1)[0]
        assert uid not in {"", "0", "root"}, (
            f"{container.name} runs as {container.user or 'the image default (root)'}"
        )
        if container.status == "running":
            rows = stack.docker("top", container.id, "-o", "pid,uid").splitlines()[1:]
            uids = [row.split()[1] for row in rows if row.strip()]
            assert uids, f"no processes listed for {container.name}"
            assert "0" not in uids, f"{container.name} has processes as root: {uids}"


def test_app_image_holds_no_private_key_and_runs_as_10001(stack: Stack) -> None:
    image = stack.env["KEEL_IMAGE"]
    config = stack.docker("image", "inspect", "--format", "{{.Config.User}}", image).strip()
    assert config == "10001:10001"
    scan = stack.docker(
        "run",
        "--rm",
        "--entrypoint",
        "python3",
        image,
        "-c",
        "import pathlib\n"
        "hits=[str(p) for root in ('/app/configs','/app/secrets') "
        "for p in pathlib.Path(root).rglob('*') if p.is_file() "
        "and b'AGE-SECRET-KEY-' in p.read_bytes()]\n"
        "print(hits or 'clean')",
    )
    assert scan.strip() == "clean", f"private age keys in the image: {scan}"


def test_two_migrators_exactly_one_applies(stack: Stack) -> None:
    database = f"keel_mig_{int(time.time())}"
    stack.run(
        "exec",
        "-T",
        "postgres",
        "psql",
        "-U",
        "keel",
        "-d",
        "keel",
        "-c",
        f"CREATE DATABASE {database}",
    )
    command = stack.command("run", "--rm", "--no-deps", "-e", f"DB_DATABASE={database}", "migrate")
    procs = [
        subprocess.Popen(
            command,
            env={**os.environ, **stack.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=180)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    # One migrator applies every migration (from an empty database), the other finds head.
    applied = [out for out in outputs if re.search(r"applied \d+ migration\(s\)", out)]
    assert len(applied) == 1, outputs
    assert "(empty -> " in applied[0], outputs


def _submits(api: Api, count: int) -> bool:
    for _ in range(count):
        if api.client.post("/api/jobs", json={"kind": "echo"}).status_code != 202:
            return False
    return True


def _running(api: Api, job_id: str) -> dict[str, Any]:
    return api.wait_status(job_id, {"running"}, timeout=30)


def test_worker_killed_mid_job_completes_it_once_after_restart(api: Api, healthy: Stack) -> None:
    stack = healthy
    job = api.submit("sleep", {"seconds": 3})
    _running(api, job["id"])
    stack.docker("kill", stack.container("worker").id)
    assert api.job(job["id"])["status"] == "running"
    stack.run("start", "worker")
    done = api.wait_done(job["id"], timeout=90)
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2, done  # the killed attempt, then exactly one that finished
    # Completed once: it stays succeeded, with the same finish, after further reclaim rounds.
    time.sleep(3)
    assert api.job(job["id"])["finished_at"] == done["finished_at"]


def test_worker_sigterm_finishes_the_job_first(api: Api, healthy: Stack) -> None:
    stack = healthy
    job = api.submit("sleep", {"seconds": 3})
    _running(api, job["id"])
    started = time.monotonic()
    stack.run("stop", "worker", timeout=60)
    assert time.monotonic() - started < 25, "stop waited the whole grace period (SIGKILL)"
    finished = api.job(job["id"])
    assert finished["status"] == "succeeded", finished
    assert finished["attempts"] == 1, finished
    worker = stack.container("worker")
    assert worker.exit_code == 0, f"worker exited {worker.exit_code} on SIGTERM"
    stack.run("start", "worker")


def test_gpu_overlay_merges_and_its_worker_runs_on_fake_nvml(
    api: Api, stack: Stack, tmp_path: Path
) -> None:
    from ruamel.yaml import YAML

    gpu = Stack(
        stack.project, [*stack.files, stack.files[0].parent / "compose.gpu.yaml"], stack.env
    )
    merged = gpu.run("config").stdout
    yaml = YAML(typ="safe")
    config = yaml.load(merged)
    service = config["services"]["worker-gpu"]
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia"
    assert devices[0]["capabilities"] == ["gpu"]
    assert service["environment"]["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert service["command"] == ["worker", "--queues", "gpu"]

    # No GPU here: drop the reservation, give it a fake NVML, and run it in the test stack.
    # The fake is test support the image leaves out (src/keel_testing): mount it for this one.
    del service["deploy"]
    service["environment"]["GPU_FAKE_NVML"] = "h100x1"
    service["environment"]["PYTHONPATH"] = "/app/test-support"
    support = stack.files[0].parent / "src" / "keel_testing"
    service["volumes"] = [
        *service.get("volumes", []),
        {
            "type": "bind",
            "source": str(support),
            "target": "/app/test-support/keel_testing",
            "read_only": True,
        },
    ]
    only_gpu = {
        "services": {"worker-gpu": service},
        "secrets": config["secrets"],
        "volumes": config.get("volumes", {}),
    }
    override = tmp_path / "gpu-without-reservation.yaml"
    with override.open("w") as handle:
        yaml.dump(only_gpu, handle)
    fake = Stack(stack.project, [*stack.files, override], stack.env)
    try:
        fake.run("up", "-d", "--no-build", "--no-deps", "worker-gpu", timeout=120)
        fake.wait_health("worker-gpu", "healthy", timeout=90)
        probe = api.submit("gpu.probe")
        assert probe["queue"] == "gpu"
        done = api.wait_done(probe["id"], timeout=60)
        assert done["status"] == "succeeded", done
        assert "H100" in str(done["result"]), done["result"]
    finally:
        fake.run("rm", "-s", "-f", "worker-gpu", check=False)


def test_healthchecks_follow_their_dependency(healthy: Stack) -> None:
    """Stop Redis: api readiness and the worker heartbeat go unhealthy; start it: both recover."""
    stack = healthy
    stack.run("stop", "redis")
    try:
        stack.wait_health("api", "unhealthy", timeout=60)
        stack.wait_health("worker", "unhealthy", timeout=60)
    finally:
        stack.run("start", "redis")
    stack.wait_health("redis", "healthy", timeout=60)
    stack.wait_health("api", "healthy", timeout=90)
    stack.wait_health("worker", "healthy", timeout=90)


def test_restart_redis_and_postgres_under_load_loses_no_accepted_job(
    api: Api, healthy: Stack
) -> None:
    stack = healthy
    accepted: list[str] = []
    refused = 0
    stop = threading.Event()

    def load() -> None:
        nonlocal refused
        with httpx.Client(
            base_url=api.base_url, headers=dict(api.client.headers), timeout=10
        ) as client:
            while not stop.is_set():
                try:
                    response = client.post("/api/jobs", json={"kind": "echo", "payload": {}})
                except httpx.HTTPError:
                    refused += 1
                    time.sleep(0.1)
                    continue
                if response.status_code == 202:
                    accepted.append(response.json()["id"])
                else:
                    refused += 1
                    time.sleep(0.1)

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(load) for _ in range(3)]
        time.sleep(2)
        stack.run("restart", "redis", timeout=60)
        time.sleep(3)
        stack.run("restart", "postgres", timeout=90)
        stack.wait_health("postgres", "healthy", timeout=60)
        time.sleep(3)
        stop.set()
        for future in futures:
            future.result()

    assert len(accepted) > 20, f"too little load got through ({len(accepted)} accepted)"
    stack.wait_health("api", "healthy", timeout=90)
    stack.wait_health("worker", "healthy", timeout=90)
    # Recovered: once healthy again, submissions go through (a first request on a connection
    # the restart closed may still fail; ten in a row must not).
    wait_for(lambda: _submits(api, 10), 30, "ten consecutive accepted submissions")
    deadline = time.monotonic() + 120
    pending = list(accepted)
    while pending and time.monotonic() < deadline:
        pending = [job_id for job_id in pending if api.job(job_id)["status"] != "succeeded"]
        if pending:
            time.sleep(1)
    assert not pending, (
        f"{len(pending)} of {len(accepted)} accepted jobs never succeeded "
        f"(e.g. {api.job(pending[0])}); {refused} requests refused during restarts"
    )
