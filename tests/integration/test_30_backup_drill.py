"""Restore drill on the real Compose stack (test overlay, its own project): seed, back up,
check the backup holds no plaintext, refuse every fault before anything is touched, destroy
every volume, restore, and check that the data, the schema, the jobs and the logins are back.

Uses `make backup` / `make restore` the way an operator does (`keel backup|restore --stack
compose` on this host; the dump tools run in the stack's postgres and redis containers).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.stack import (
    DOCKER,
    Api,
    Stack,
    docker_available,
    image_exists,
    service_images,
    wait_for,
)
from tests.support import REPO, free_port

PROJECT = "keel-it-backup"
FILES = [REPO / "compose.yaml", REPO / "configs" / "test" / "compose.yaml"]
KEEL = str(Path(sys.executable).with_name("keel"))
USER = ("drill-user", "drill-password-4242")
AGE_MAGIC = b"age-encryption.org/v1\n"
TABLES = ("users", "api_keys", "alembic_versions")


@pytest.fixture(scope="module")
def drill_env() -> dict[str, str]:
    why = docker_available()
    if why:
        pytest.skip(f"needs Docker: {why}")
    image = os.environ.get("KEEL_IMAGE", "keel:latest")
    if not image_exists(image):
        pytest.skip(f"needs the app image {image}: run `make image-docker` (or make image)")
    return {
        "ENV": "test",
        "APP_ENV": "test",
        "COMPOSE_PROJECT_NAME": PROJECT,
        "KEEL_IMAGE": image,
        "KEEL_SKIP_BUILD": "1",
        "HTTP_PORT": str(free_port()),
        **service_images(),
    }


@pytest.fixture(scope="module")
def drill(drill_env: dict[str, str]) -> Iterator[Stack]:
    stack = Stack(PROJECT, FILES, drill_env)
    compose_sh(drill_env, "down")
    up = compose_sh(drill_env, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield stack
    finally:
        compose_sh(drill_env, "down")


def compose_sh(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "containers" / "compose.sh"), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
        cwd=REPO,
    )


def keel(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KEEL, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
        cwd=REPO,
    )


def sql(stack: Stack, query: str) -> str:
    result = stack.run(
        "exec",
        "-T",
        "postgres",
        "psql",
        "-X",
        "-U",
        "keel",
        "-d",
        "keel",
        "-v",
        "ON_ERROR_STOP=1",
        "-Atc",
        query,
    )
    return result.stdout.strip()


def checksum(stack: Stack, table: str, where: str = "true") -> str:
    return sql(
        stack,
        f"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') "
        f"FROM {table} t WHERE {where}",
    )


def project_containers() -> list[str]:
    out = subprocess.run(
        [DOCKER, "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def project_volumes() -> list[str]:
    out = subprocess.run(
        [DOCKER, "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def refusal(result: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a refused restore (and no traceback)."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [
        line for line in result.stderr.splitlines() if line.startswith("keel restore: error:")
    ]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_restore_drill(drill: Stack, drill_env: dict[str, str], tmp_path: Path) -> None:
    env = drill_env
    api = Api(f"http://127.0.0.1:{env['HTTP_PORT']}")
    api.login(drill, *USER)
    marker = f"DRILL-MARKER-{uuid.uuid4().hex}"
    key = drill.run("exec", "-T", "api", "keel", "apikeys", "create", "drill-reporting", "--json")
    assert key.returncode == 0, key.stderr

    # Jobs: some finished, then the workers go away and some stay queued.
    done = [api.submit("echo", {"note": marker, "i": i})["id"] for i in range(4)]
    for job_id in done:
        assert api.wait_done(job_id)["status"] == "succeeded"
    drill.run("rm", "-s", "-f", "worker")
    queued = [api.submit("echo", {"note": marker, "q": i})["id"] for i in range(5)]
    assert {api.job(job_id)["status"] for job_id in queued} == {"queued"}

    # A Redis-only fact: only a restore that loads the Redis part brings it back.
    redis_cli(drill, "SET", "drill:marker", marker)
    before = {table: checksum(drill, table) for table in TABLES}
    finished_before = checksum(drill, "jobs", "status <> 'queued'")
    head_before = sql(drill, "SELECT version_num FROM alembic_versions")
    old_token = api.client.headers["Authorization"]

    # Back up (make backup ENV=test, in this project).
    backups = tmp_path / "backups"
    made = keel(env, "backup", "--env", "test", "--stack", "compose", "--dir", str(backups))
    assert made.returncode == 0, made.stderr
    folder = Path(made.stdout.strip().splitlines()[-1])
    parts = sorted(p.name for p in folder.iterdir())
    assert parts == ["manifest.json", "postgres.dump.age", "redis.rdb.age"]
    for name in ("postgres.dump.age", "redis.rdb.age"):
        data = (folder / name).read_bytes()
        assert data.startswith(AGE_MAGIC), name
        assert marker.encode() not in data, f"plaintext marker in {name}"
    assert marker not in (folder / "manifest.json").read_text()

    def restore(source: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return keel(env, "restore", str(source), "--env", "test", "--stack", "compose", *extra)

    # A backup made for another environment's key: the test key cannot open it.
    other = keel(
        env,
        "backup",
        "--env",
        "test",
        "--stack",
        "compose",
        "--no-redis",
        "--dir",
        str(tmp_path / "foreign"),
        "--recipient",
        _new_recipient(),
    )
    assert other.returncode == 0, other.stderr
    foreign = Path(other.stdout.strip().splitlines()[-1])

    # A target that is not empty: refused, nothing changed.
    line = refusal(restore(folder))
    assert "not empty" in line
    assert {table: checksum(drill, table) for table in TABLES} == before

    # Destroy every volume (make down ENV=test drops them).
    down = compose_sh(env, "down")
    assert down.returncode == 0, down.stderr
    assert project_containers() == []
    assert project_volumes() == []

    # Faults on copies: each refused with one line before anything of the stack starts.
    def broken_copy(name: str) -> Path:
        copy = tmp_path / "faults" / name / folder.name
        shutil.copytree(folder, copy)
        return copy

    truncated = broken_copy("truncated")
    dump = truncated / "postgres.dump.age"
    dump.write_bytes(dump.read_bytes()[:-64])
    flipped = broken_copy("flipped")
    dump = flipped / "postgres.dump.age"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x40
    dump.write_bytes(bytes(data))
    missing = broken_copy("missing")
    (missing / "redis.rdb.age").unlink()
    faults = {
        "truncated": (restore(truncated), "truncated"),
        "flipped byte": (restore(flipped), "SHA-256"),
        "missing part": (restore(missing), "missing"),
        "wrong key": (restore(foreign), "wrong key"),
    }
    for name, (result, expected) in faults.items():
        line = refusal(result)
        assert expected in line, f"{name}: {line}"
        assert project_containers() == [], f"{name}: the stack was started"
        assert project_volumes() == [], f"{name}: a volume was created"

    # Restore (make restore ENV=test FROM=...).
    began = time.monotonic()
    restored = restore(folder)
    rto = time.monotonic() - began
    assert restored.returncode == 0, restored.stderr
    assert "restoring into the empty database keel" in restored.stderr
    print(f"\nrestore drill: RTO {rto:.1f}s (verify + restore + migrate + stack ready)")

    # Same data, same schema, ready.
    assert {table: checksum(drill, table) for table in TABLES} == before
    assert checksum(drill, "jobs", f"id IN ({','.join(done)})") == finished_before
    assert sql(drill, "SELECT version_num FROM alembic_versions") == head_before
    assert httpx.get(f"{api.base_url}/health/ready", timeout=10).status_code == 200

    # Sessions: the old token is refused; the user logs in again.
    fresh = Api(api.base_url)
    fresh.client.headers["Authorization"] = old_token
    assert fresh.client.get("/api/users/me").status_code == 401
    login = httpx.post(
        f"{api.base_url}/api/auth/login",
        json={"username": USER[0], "password": USER[1]},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    fresh.client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"

    # Every job queued at backup time runs, once.
    for job_id in queued:
        job = fresh.wait_done(job_id, timeout=90)
        assert job["status"] == "succeeded", job
    attempts = sql(
        drill, f"SELECT string_agg(attempts::text, ',') FROM jobs WHERE id IN ({','.join(queued)})"
    )
    assert attempts.split(",") == ["1"] * len(queued)
    wait_for(lambda: drill.health_of("worker") == "healthy", 60, "worker healthy")
    assert redis_cli(drill, "GET", "drill:marker") == ""  # Redis started empty by default

    # Again over the running stack: --replace swaps the database (the old one is kept) and
    # --with-redis loads the Redis part too.
    again = restore(folder, "--replace", "--with-redis")
    assert again.returncode == 0, again.stderr
    assert redis_cli(drill, "GET", "drill:marker") == marker
    assert {table: checksum(drill, table) for table in TABLES} == before
    kept = sql(drill, "SELECT count(*) FROM pg_database WHERE datname LIKE 'keel_before_restore_%'")
    assert kept == "1"
    assert httpx.get(f"{api.base_url}/health/ready", timeout=10).status_code == 200
    for job_id in queued:
        assert fresh_login(api.base_url).wait_done(job_id, timeout=90)["status"] == "succeeded"


def redis_cli(stack: Stack, *args: str) -> str:
    result = stack.run(
        "exec",
        "-T",
        "redis",
        "sh",
        "-c",
        'REDISCLI_AUTH="$(cat /run/keel-credentials/redis_password)" exec redis-cli "$@"',
        "redis-cli",
        *args,
    )
    return result.stdout.strip()


def fresh_login(base_url: str) -> Api:
    client = Api(base_url)
    login = httpx.post(
        f"{base_url}/api/auth/login", json={"username": USER[0], "password": USER[1]}, timeout=10
    )
    assert login.status_code == 200, login.text
    client.client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    return client


def _new_recipient() -> str:
    from keel.secrets.age_keys import generate

    return generate()[1]
