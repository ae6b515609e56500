"""End to end: `keel serve` as a subprocess, request id round trip, access log, SIGTERM exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support import REPO, free_port


def keel(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "keel.cli", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kwargs,  # type: ignore[call-overload]
    )


def wait_live(port: int, proc: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not become live")


def test_serve_round_trip_access_log_and_clean_sigterm(tmp_path: Path) -> None:
    port = free_port()
    kill_timeout = 5
    env = {
        "APP_ENV": "local",
        "LOG_FORMAT": "json",
        "HTTP_WORKERS_KILL_TIMEOUT": str(kill_timeout),
        "DB_DATABASE": str(tmp_path / "keel.db"),
    }
    proc = keel("serve", "--port", str(port), env=env)
    try:
        wait_live(port, proc)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/health/live", headers={"X-Request-ID": "e2e-req-42"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.headers["X-Request-ID"] == "e2e-req-42"
            assert json.loads(response.read()) == {"status": "ok"}
        healthcheck = subprocess.run(
            [
                sys.executable,
                "-m",
                "keel.cli",
                "healthcheck",
                "api",
                "--live",
                "--url",
                f"http://127.0.0.1:{port}/health/live",
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=False,
        )
        assert healthcheck.returncode == 0, healthcheck.stdout
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=kill_timeout + 5)
        elapsed = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert elapsed < kill_timeout
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [r for r in records if r.get("logger") == "keel.access"]
    assert any(
        r["request_id"] == "e2e-req-42" and r["status"] == 200 and r["path"] == "/health/live"
        for r in access
    ), access
    assert any(r["message"] == "shutting down" for r in records)


def test_healthcheck_exits_1_when_nothing_listens() -> None:
    port = free_port()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keel.cli",
            "healthcheck",
            "api",
            "--url",
            f"http://127.0.0.1:{port}/health/ready",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 1
    assert "unhealthy" in result.stdout
    assert "unreachable" in result.stdout


def test_serve_with_bad_config_exits_2_listing_every_problem() -> None:
    proc = keel("serve", env={"APP_ENV": "local", "HTTP_PORT": "eighty", "HTTP_WORKERS": "0"})
    output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "env HTTP_PORT: HTTP_PORT: expected an integer, got 'eighty'" in output
    assert "Traceback" not in output


def test_config_show_cli_masks_and_reports_sources() -> None:
    secret = "cli-visible-secret-0123456789"
    result = subprocess.run(
        [sys.executable, "-m", "keel.cli", "config", "show", "--env", "local", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        env={**os.environ, "DB_PASSWORD": secret},
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["DB_PASSWORD"]["value"].startswith("****")
    assert shown["DB_PASSWORD"]["source"] == "env (env DB_PASSWORD)"
    assert secret not in result.stdout
    assert shown["DB_TYPE"] == {"value": "sqlite", "source": shown["DB_TYPE"]["source"]}
    assert "configs/local/app.env" in shown["DB_TYPE"]["source"]


def test_unknown_env_on_the_cli_exits_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "keel.cli", "config", "show"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        env={**os.environ, "APP_ENV": "staging"},
    )
    assert result.returncode == 2
    assert "valid: local, dev, test, prod" in result.stderr


def test_a_resource_that_cannot_start_stops_the_server_with_one_line() -> None:
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "local",
        "DEBUG": "false",
        "LOG_FORMAT": "json",
        "PYTHONPATH": str(Path(__file__).parent),
    }
    result = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "failing_server.py"), str(port)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 3
    assert result.stderr.strip().splitlines()[-1] == (
        "startup failed: database: ConnectionRefusedError: connect to 127.0.0.1:1 refused"
    )
    assert "Traceback" not in result.stdout + result.stderr  # DEBUG=false: no traceback
    assert result.stdout.count("Spawning worker") == 1  # no respawn loop
