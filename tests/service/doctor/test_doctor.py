"""Each check broken on purpose: its line, its fix and docs lines, its JSON entry, the exit code."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from keel.doctor.context import DoctorContext
from keel.doctor.model import Status
from keel.doctor.registry import select
from keel.doctor.runner import run_checks
from keel.secrets import age_keys
from tests.service.conftest import FAST_TIMINGS, KEEL, REPO, Proc, process_env, wait_for
from tests.service.doctor.conftest import Report
from tests.service.servers import RedisServer, free_port

Doctor = Callable[..., Report]


@pytest.fixture
def base_env(doctor_root: Path, stack_env: dict[str, str]) -> dict[str, str]:
    """APP_ENV=test pointed at this test's own PostgreSQL database and Redis prefix."""
    return {"APP_ENV": "test", "KEEL_ROOT": str(doctor_root), **stack_env}


def assert_fails(report: Report, check_id: str, *words: str) -> None:
    assert report.code == 1, report.text
    entry = report.entry(check_id)
    assert entry["status"] == "fail", entry
    block = report.block(check_id)
    assert block.startswith(f"FAIL {check_id} "), block
    assert "    fix:  " in block, block
    assert f"    docs: {entry['docs']}" in block, block
    assert entry["fix"]
    assert entry["fix"] in block
    for word in words:
        assert word in entry["detail"] + entry["fix"], entry


def status(report: Report, check_id: str) -> str:
    return str(report.entry(check_id)["status"])


# --- all well --------------------------------------------------------------------------------


def test_everything_ok_with_a_live_worker(
    base_env: dict[str, str], run_doctor: Doctor, spawn: Callable[..., Proc]
) -> None:
    env = {**base_env, **FAST_TIMINGS}
    # APP_ENV=test binds metrics on 0.0.0.0 (for containers): not needed here.
    spawn(["worker"], {**env, "METRICS_ENABLED": "false"}, name="worker")

    def worker_seen() -> Report | None:
        report = run_doctor(env, "--only", "workers.default")
        return report if report.code == 0 else None

    wait_for(worker_seen, 60, "a worker heartbeat", interval=0.5)
    report = run_doctor(env)
    assert report.code == 0, report.text
    assert report.doc["summary"]["fail"] == 0
    assert {c["id"]: c["status"] for c in report.doc["checks"]} == {
        "config.env_file": "ok",
        "secrets.file": "ok",
        "secrets.key": "ok",
        "secrets.decrypt": "ok",
        "secrets.recipients": "ok",
        "config.load": "ok",
        "prod.debug": "skip",
        "prod.cors": "skip",
        "prod.secrets": "skip",
        "host.log_dir": "skip",
        "db.reachable": "ok",
        "db.credentials": "ok",
        "db.exists": "ok",
        "db.schema": "ok",
        "clock.db": "ok",
        "redis.reachable": "ok",
        "redis.auth": "ok",
        "redis.persistence": "ok",
        "broker.groups": "ok",
        "workers.default": "ok",
        "workers.gpu": "skip",
        "clock.redis": "ok",
        "gpu.visible": "skip",
    }
    # Not a terminal: plain words, one line per check, a summary last.
    assert report.line("db.schema").startswith("OK   db.schema ")
    assert "✓" not in report.text
    assert "✗" not in report.text
    assert report.text.splitlines()[-1] == "17 ok, 0 warning(s), 0 failed, 6 skipped"


# --- config and secrets ----------------------------------------------------------------------


def test_missing_env_file(base_env: dict[str, str], doctor_root: Path, run_doctor: Doctor) -> None:
    (doctor_root / "configs" / "test" / "app.env").unlink()
    report = run_doctor(base_env)
    assert_fails(report, "config.env_file", "configs/test/app.env does not exist", "KEEL_ROOT")
    assert_fails(report, "config.load", "missing")
    assert status(report, "db.reachable") == "skip"


def test_missing_secrets_file(
    base_env: dict[str, str], doctor_root: Path, run_doctor: Doctor
) -> None:
    (doctor_root / "secrets" / "test.yaml").unlink()
    report = run_doctor(base_env)
    assert_fails(report, "secrets.file", "test.yaml does not exist", "make secrets-init ENV=test")
    assert status(report, "secrets.decrypt") == "skip"


def test_key_file_that_does_not_exist(base_env: dict[str, str], run_doctor: Doctor) -> None:
    report = run_doctor({**base_env, "SOPS_AGE_KEY_FILE": "/nonexistent/test.agekey"})
    assert_fails(report, "secrets.key", "SOPS_AGE_KEY_FILE=/nonexistent/test.agekey does not exist")
    assert status(report, "secrets.decrypt") == "skip"


def test_wrong_key(
    base_env: dict[str, str], doctor_root: Path, tmp_path: Path, run_doctor: Doctor
) -> None:
    (doctor_root / "secrets" / "keys" / "test.agekey").unlink()  # the committed fallback
    identity, _ = age_keys.generate()
    other = tmp_path / "other.agekey"
    other.write_text(identity + "\n")
    report = run_doctor({**base_env, "SOPS_AGE_KEY_FILE": str(other)}, secrets=(identity,))
    assert status(report, "secrets.key") == "ok"
    assert_fails(report, "secrets.decrypt", "updatekeys")
    assert_fails(report, "config.load")


def test_recipients_differ_from_sops_yaml(
    base_env: dict[str, str], doctor_root: Path, run_doctor: Doctor
) -> None:
    _, extra = age_keys.generate()
    config = doctor_root / ".sops.yaml"
    text = config.read_text()
    test_rule = "age: age1llrcmjl22jcva87ncng4yj9gnlzat27mf4aruyzsfdemxt6h540qk9udw4"
    assert test_rule in text
    config.write_text(text.replace(test_rule, f"{test_rule},{extra}"))
    report = run_doctor(base_env)
    assert_fails(report, "secrets.recipients", f"missing {extra}", "keel secrets updatekeys")
    assert status(report, "secrets.decrypt") == "ok"


def test_config_reports_every_problem(base_env: dict[str, str], run_doctor: Doctor) -> None:
    report = run_doctor({**base_env, "HTTP_PORT": "eighty", "WORKER_PROCESSES": "many"})
    assert_fails(report, "config.load", "2 problem(s)", "HTTP_PORT", "WORKER_PROCESSES")
    assert "- env HTTP_PORT: HTTP_PORT: expected" in report.block("config.load")
    assert status(report, "db.reachable") == "skip"


# --- prod guards -----------------------------------------------------------------------------


@pytest.fixture
def prod_env(doctor_root: Path, tmp_path: Path, base_env: dict[str, str]) -> dict[str, str]:
    """A prod environment of this test's own: a fresh key, a rule, real random secrets."""
    from keel.cli import main

    key = tmp_path / "keys" / "prod.agekey"
    # --replace-rule: the committed .sops.yaml names the maintainers' prod key.
    init = ["secrets", "init", "prod", "--replace-rule"]
    code = main([*init, "--root", str(doctor_root), "--key-file", str(key)])
    assert code == 0
    # The test servers' passwords look like placeholders: prod takes the generated ones.
    env = {k: v for k, v in base_env.items() if k != "DB_PASSWORD"}
    return {**env, "APP_ENV": "prod", "SOPS_AGE_KEY_FILE": str(key)}


def test_prod_guards_pass(prod_env: dict[str, str], run_doctor: Doctor) -> None:
    report = run_doctor(prod_env, "--only", "config,secrets,prod")
    assert report.code == 0, report.text
    assert [status(report, c) for c in ("prod.debug", "prod.cors", "prod.secrets")] == ["ok"] * 3


def test_prod_refuses_debug_cors_and_placeholder(
    prod_env: dict[str, str], run_doctor: Doctor
) -> None:
    placeholder = "change-me-change-me-change-me-change-me"
    env = {**prod_env, "DEBUG": "true", "CORS_ORIGINS": "*", "JWT_SECRET_KEY": placeholder}
    report = run_doctor(env, "--only", "config,prod", secrets=(placeholder,))
    assert_fails(report, "prod.debug", "DEBUG: must be false in prod", "DEBUG=false")
    assert_fails(report, "prod.cors", "'*' is refused", "exact origins")
    assert_fails(report, "prod.secrets", "JWT_SECRET_KEY: looks like a placeholder")
    assert_fails(report, "config.load", "3 problem(s)")


def test_prod_redis_without_persistence(
    prod_env: dict[str, str], run_doctor: Doctor, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "redis-noaof")
    server.start()
    try:
        subprocess.run(
            ["redis-cli", "-p", str(server.port), "CONFIG", "SET", "appendonly", "no"], check=True
        )
        # This Redis has no password: an empty one overrides the secrets file's.
        env = {**prod_env, **server.env(), "REDIS_PASSWORD": ""}
        report = run_doctor(env, "--only", "redis")
        assert_fails(report, "redis.persistence", "appendonly no", "--appendonly yes")
    finally:
        server.stop()


# --- database --------------------------------------------------------------------------------


def test_database_unreachable(base_env: dict[str, str], run_doctor: Doctor) -> None:
    report = run_doctor({**base_env, "DB_PORT": str(free_port())}, "--only", "db")
    assert_fails(report, "db.reachable", "server unreachable", "DB_HOST")
    assert [status(report, c) for c in ("db.credentials", "db.exists", "db.schema")] == ["skip"] * 3
    assert {c["group"] for c in report.doc["checks"]} == {"db"}


def test_database_wrong_password(base_env: dict[str, str], run_doctor: Doctor) -> None:
    report = run_doctor({**base_env, "DB_PASSWORD": "wrong-password-1"}, "--only", "db")
    assert status(report, "db.reachable") == "ok"
    assert_fails(report, "db.credentials", "authentication failed", "ALTER USER")


def test_database_missing(base_env: dict[str, str], run_doctor: Doctor) -> None:
    report = run_doctor({**base_env, "DB_DATABASE": "no_such_db"}, "--only", "db")
    assert status(report, "db.credentials") == "ok"
    assert_fails(report, "db.exists", "does not exist", "DB_DATABASE")


def test_schema_behind(
    base_env: dict[str, str], pg_empty_env: dict[str, str], run_doctor: Doctor
) -> None:
    report = run_doctor({**base_env, **pg_empty_env}, "--only", "db")
    assert_fails(report, "db.schema", "schema at empty, code expects", "keel migrate")


# --- Redis, broker, workers --------------------------------------------------------------------


def test_redis_unreachable(base_env: dict[str, str], run_doctor: Doctor) -> None:
    report = run_doctor({**base_env, "REDIS_PORT": str(free_port())}, "--only", "redis,broker")
    assert_fails(report, "redis.reachable", "ConnectionError", "REDIS_HOST")
    assert status(report, "redis.auth") == "skip"
    assert status(report, "broker.groups") == "skip"


def test_redis_password(base_env: dict[str, str], run_doctor: Doctor, tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis-auth")
    server.start()
    try:
        right = "right-redis-password-123"
        subprocess.run(
            ["redis-cli", "-p", str(server.port), "CONFIG", "SET", "requirepass", right],
            check=True,
            capture_output=True,
        )
        env = {**base_env, **server.env()}
        wrong = run_doctor({**env, "REDIS_PASSWORD": "wrong-redis-password"}, "--only", "redis")
        assert status(wrong, "redis.reachable") == "ok"
        assert_fails(wrong, "redis.auth", "refused the credentials", "requirepass")
        good = run_doctor({**env, "REDIS_PASSWORD": right}, "--only", "redis", secrets=(right,))
        assert good.code == 0, good.text
        assert good.entry("redis.auth")["detail"] == "authenticated"
    finally:
        server.stop()


def test_no_consumer_group_and_no_worker(base_env: dict[str, str], run_doctor: Doctor) -> None:
    report = run_doctor(base_env, "--only", "broker,workers")
    assert_fails(report, "broker.groups", "consumer group keel-workers missing", "start the api")
    assert_fails(report, "workers.default", "no live worker heartbeat for queue default")
    # Nobody configured the gpu queue here: optional, never a failure.
    assert status(report, "workers.gpu") == "skip"


# --- host ----------------------------------------------------------------------------------


def test_log_dir_missing_and_full(
    base_env: dict[str, str], tmp_path: Path, run_doctor: Doctor
) -> None:
    missing = run_doctor(
        {**base_env, "LOG_FILE": str(tmp_path / "nope" / "keel.log")}, "--only", "host"
    )
    assert_fails(missing, "host.log_dir", "does not exist", "writable")
    env = {**base_env, "LOG_FILE": str(tmp_path / "keel.log")}
    assert run_doctor(env, "--only", "host").code == 0
    full = run_doctor(env, "--only", "host", "--min-free-mb", str(1 << 40))
    assert_fails(full, "host.log_dir", "MiB free, below", "LOG_RETENTION")


def test_gpu_queue_without_gpu(base_env: dict[str, str], run_doctor: Doctor) -> None:
    env = {**base_env, "WORKER_QUEUES": "default,gpu"}
    report = run_doctor({**env, "GPU_FAKE_NVML": "none"}, "--only", "gpu,workers")
    assert_fails(report, "gpu.visible", "no usable GPU", "NVIDIA")
    # Configured here, so a missing gpu worker is a failure too.
    assert_fails(report, "workers.gpu", "no live worker heartbeat for queue gpu")
    fine = run_doctor({**env, "GPU_FAKE_NVML": "h100x1"}, "--only", "gpu")
    assert fine.code == 0
    assert "1 GPU(s) visible" in fine.entry("gpu.visible")["detail"]


def test_clock_skew_against_db_and_redis(stack_env: dict[str, str], doctor_root: Path) -> None:
    # The host clock cannot be moved in a test: the doctor's view of it is shifted instead.
    environ = {"APP_ENV": "test", "KEEL_ROOT": str(doctor_root), **stack_env}
    checks, _ = select(["clock"], [])

    def run(offset: float) -> dict[str, Status]:
        ctx = DoctorContext.create("test", environ, clock=lambda: time.time() + offset)
        return {r.check.id: r.status for r in asyncio.run(run_checks(checks, ctx))}

    assert run(0) == {"clock.db": Status.OK, "clock.redis": Status.OK}
    assert run(1.0) == {"clock.db": Status.WARN, "clock.redis": Status.WARN}
    assert run(-30) == {"clock.db": Status.FAIL, "clock.redis": Status.FAIL}


# --- the command line itself -------------------------------------------------------------------


def test_usage_errors(base_env: dict[str, str], run_doctor: Doctor) -> None:
    from keel.cli import main

    assert main(["doctor", "--only", "nosuch"]) == 2
    assert main(["doctor", "--skip", "db.nope"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["doctor", "--env", "staging"])
    assert exc.value.code == 2


def test_real_command_line_exit_code_and_ascii(base_env: dict[str, str]) -> None:
    env = process_env({**base_env, "DB_PORT": str(free_port())})
    done = subprocess.run(
        [KEEL, "doctor", "--only", "config,db.reachable"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "OK   config.load " in done.stdout
    assert "FAIL db.reachable " in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
