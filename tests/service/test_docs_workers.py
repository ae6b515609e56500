"""docs/jobs.md's worker commands, as written, against a real Redis and PostgreSQL.

The block is tagged ``needs=redis`` (tests/unit/docs/test_docs_run.py cannot run it); here the
suite's servers stand in for the reader's. As a reader would, each `keel worker` line runs in
its own terminal (a background process here) until Ctrl-C, and the health check runs beside
them. The host has no GPU, so the fake NVML stands in for one (the `gpu` queue needs it).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

from tests.service.conftest import REPO, process_env, wait_for

DOC = REPO / "docs" / "jobs.md"


def _worker_block() -> list[str]:
    text = DOC.read_text()
    body = re.search(r"^```sh needs=redis\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    assert body is not None, "docs/jobs.md has no `sh needs=redis` block"
    lines = [re.sub(r"\s+#\s.*$", "", line).strip() for line in body.group(1).splitlines()]
    return [line for line in lines if line]


def test_the_worker_commands_run_as_written(stack_env: dict[str, str], tmp_path: Path) -> None:
    env = {**process_env(stack_env), "GPU_FAKE_NVML": "h100x1", "LOG_FORMAT": "console"}
    lines = _worker_block()
    servers = [line for line in lines if " worker " in f"{line} " and "healthcheck" not in line]
    checks = [line for line in lines if "healthcheck" in line]
    assert len(servers) == 2
    assert checks == ["uv run keel healthcheck worker"]
    procs = []
    try:
        for index, line in enumerate(servers):
            log = (tmp_path / f"worker{index}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    ["bash", "-c", line],
                    cwd=REPO,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

        def listening() -> bool:
            for proc in procs:
                assert proc.poll() is None, f"a worker exited: {proc.args}"
            logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(len(procs))]
            return all("Listening started" in log for log in logs)

        # Both up (not just the first one's heartbeat) before the check and the Ctrl-C.
        wait_for(listening, 90, "both workers to listen", interval=0.2)

        def healthy() -> bool:
            for proc in procs:
                assert proc.poll() is None, f"a worker exited: {proc.args}"
            result = subprocess.run(
                ["bash", "-c", checks[0]], cwd=REPO, env=env, capture_output=True, check=False
            )
            return result.returncode == 0

        wait_for(healthy, 90, "`keel healthcheck worker` to pass", interval=0.5)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the worker's terminal
        codes = [_stopped(proc) for proc in procs]
    logs = [(tmp_path / f"worker{i}.log").read_text()[-3000:] for i in range(len(procs))]
    # Ctrl-C stops each one promptly: exit 0, or 130 (128 + SIGINT) when the shell or uv
    # reports the interrupt itself, as in a terminal; never a hang or a traceback.
    assert all(code in (0, 130) for code in codes), (codes, logs)
    assert not any("Traceback" in log for log in logs), logs


def _stopped(proc: subprocess.Popen[bytes]) -> int | None:
    try:
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        return None
