"""The prod and dev overlays, each brought up for real from a copy of the repository whose
key and secrets file are made at test time with `keel secrets init` (nothing in the checkout
changes). Runs before the shared test stack starts, so the machine runs one stack at a time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.stack import (
    Stack,
    docker_available,
    image_exists,
    service_images,
    stage_key,
    wait_for,
)
from tests.support import REPO, free_port

KEEL = str(Path(sys.executable).with_name("keel"))
KEEL_IMAGE = os.environ.get("KEEL_IMAGE", "keel:latest")


@pytest.fixture(scope="module", autouse=True)
def _needs_docker() -> None:
    why = docker_available()
    if why:
        pytest.skip(f"needs Docker: {why}")
    if not image_exists(KEEL_IMAGE):
        pytest.skip(f"needs the app image {KEEL_IMAGE}: run `make image-docker` (or make image)")


def repo_copy(tmp: Path, *, with_src: bool = False) -> Path:
    """What a deployment checkout holds: compose files, configs, .env (and src for dev)."""
    root = tmp / "repo"
    root.mkdir()
    for name in ("compose.yaml", "compose.gpu.yaml", ".env"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "configs", root / "configs")
    (root / "secrets").mkdir()
    if with_src:
        shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def secrets_init(root: Path, env: str, key: Path) -> None:
    result = subprocess.run(
        [KEEL, "secrets", "init", env, "--root", str(root), "--key-file", str(key)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (root / "secrets" / f"{env}.yaml").is_file()


@pytest.fixture
def down_after() -> Iterator[list[Stack]]:
    stacks: list[Stack] = []
    yield stacks
    for stack in stacks:
        stack.run("down", "-v", "--remove-orphans", check=False, timeout=180)


def test_prod_overlay_boots_hardened_behind_the_proxy(
    tmp_path: Path, down_after: list[Stack]
) -> None:
    root = repo_copy(tmp_path)
    key = tmp_path / "keys" / "prod.agekey"
    key.parent.mkdir()
    secrets_init(root, "prod", key)
    port = free_port()
    env = {
        "APP_ENV": "prod",
        "KEEL_IMAGE": KEEL_IMAGE,
        "KEEL_AGE_KEY_FILE": str(stage_key(key, tmp_path / "staged")),
        "PROXY_PORT": str(port),
        "API_REPLICAS": "2",
        "WORKER_REPLICAS": "1",
        **service_images(),
    }
    stack = Stack("keel-it-prod", [root / "compose.yaml", root / "configs/prod/compose.yaml"], env)
    down_after.append(stack)
    stack.run("up", "-d", "--no-build", timeout=300)
    stack.wait_healthy(timeout=240)

    containers = stack.containers()
    running = [c for c in containers if c.status == "running"]
    assert sorted(c.service for c in running) == [
        "api",
        "api",
        "postgres",
        "proxy",
        "redis",
        "worker",
    ]
    for container in running:
        assert container.read_only, f"{container.name} has a writable root filesystem"
        caps = stack.docker(
            "inspect",
            "--format",
            "{{json .HostConfig.CapDrop}} {{json .HostConfig.PortBindings}}",
            container.id,
        )
        assert '"ALL"' in caps, f"{container.name} keeps capabilities: {caps}"
        published = container.service == "proxy"
        assert ("8080/tcp" in caps) == published, f"{container.name} ports: {caps}"

    base = f"http://127.0.0.1:{port}"
    ready = httpx.get(f"{base}/health/ready", timeout=5)
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ok"
    # The proxy's own limits: a 2 MB body is refused before it reaches the api.
    big = httpx.post(f"{base}/api/jobs", content=b"a" * 2_000_000, timeout=10)
    assert big.status_code == 413
    # Metrics never leave the stack's network: the proxy refuses the path, the api answers
    # on its internal port only (not published, see the port check above).
    for path in ("/metrics", "/metrics/", "/metrics?x=1"):
        assert httpx.get(f"{base}{path}", timeout=5).status_code == 404
    scrape = stack.run(
        "exec",
        "-T",
        "api",
        "python3",
        "-c",
        "import urllib.request as u;print(u.urlopen('http://127.0.0.1:9464/metrics').read().decode())",
        timeout=60,
    )
    assert "keel_http_requests_total" in scrape.stdout

    # Both replicas get traffic; a replica added by --scale is picked up without a reload.
    def requests_per_replica() -> dict[str, int]:
        for _ in range(30):
            assert httpx.get(f"{base}/health/live", timeout=5).status_code == 200
        # The api's access log (stdout) names each request it served.
        return {
            c.name: stack.docker("logs", c.id).count("GET /health/live")
            for c in stack.containers()
            if c.service == "api"
        }

    counts = requests_per_replica()
    assert len(counts) == 2
    assert all(counts.values()), f"a replica got no requests through the proxy: {counts}"

    stack.run("up", "-d", "--no-build", "--no-recreate", "--scale", "api=3", timeout=180)
    stack.wait_healthy(timeout=120)

    def third_replica_serves() -> bool:
        return all(requests_per_replica().values())

    wait_for(third_replica_serves, 60, "the third api replica to get proxied requests")


def test_plain_compose_up_is_the_dev_stack(tmp_path: Path, down_after: list[Stack]) -> None:
    """`docker compose up` in a checkout: .env picks APP_ENV=dev and the dev overlay."""
    root = repo_copy(tmp_path, with_src=True)
    plain = Stack("keel-it-dev", [], {})

    def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "APP_"))}
        return subprocess.run(
            [*plain.compose, "-p", "keel-it-dev", *args],
            cwd=root,
            env={**clean, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    images = service_images()
    missing_key = str(tmp_path / "nowhere" / "dev.agekey")
    config = compose("config", env={"KEEL_AGE_KEY_FILE": missing_key, **images})
    assert config.returncode == 0, config.stderr
    assert "APP_ENV: dev" in config.stdout
    assert f"{root}/src:/app/src:ro" in config.stdout
    assert "HTTP_RELOAD: 'true'" in config.stdout or 'HTTP_RELOAD: "true"' in config.stdout

    # No dev key yet: nothing starts, and the error names the missing file.
    refused = compose("up", "-d", "--no-build", env={"KEEL_AGE_KEY_FILE": missing_key, **images})
    assert refused.returncode != 0
    assert "dev.agekey" in refused.stderr, refused.stderr
    assert not [c for c in Stack("keel-it-dev", [], {}).containers() if c.status == "running"]
    compose("down", "-v", env={"KEEL_AGE_KEY_FILE": missing_key, **images})

    # With a dev key and secrets file (made the way the README says), it comes up healthy.
    key = tmp_path / "keys" / "dev.agekey"
    key.parent.mkdir()
    secrets_init(root, "dev", key)
    api_port = free_port()
    env = {
        "KEEL_AGE_KEY_FILE": str(stage_key(key, tmp_path / "staged")),
        "KEEL_IMAGE": KEEL_IMAGE,
        "HTTP_PORT": str(api_port),
        "POSTGRES_PORT": str(free_port()),
        "REDIS_PORT": str(free_port()),
        **images,
    }
    stack = Stack(
        "keel-it-dev",
        [root / "compose.yaml", root / "configs/dev/compose.yaml"],
        {**env, "APP_ENV": "dev"},
    )
    down_after.append(stack)
    up = compose("up", "-d", "--no-build", env=env)
    assert up.returncode == 0, up.stderr
    stack.wait_healthy(timeout=240)
    ready = httpx.get(f"http://127.0.0.1:{api_port}/health/ready", timeout=5)
    assert ready.status_code == 200, ready.text
    # The api runs the bind-mounted source, not the copy in the image.
    where = stack.run("exec", "-T", "api", "python3", "-c", "import keel; print(keel.__file__)")
    assert where.stdout.strip() == "/app/src/keel/__init__.py"
