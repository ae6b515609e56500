"""`keel worker` hands its command-line choices to the worker processes through the
environment only, so a spawned process (Taskiq's default on macOS) sees them as a forked one."""

from __future__ import annotations

import multiprocessing
import os

import pytest
from tests.support import REPO

from keel.cli import build_parser
from keel.tasks.commands import _hand_to_processes


def _settings_in_child(queue: multiprocessing.Queue[tuple[list[str], int, int, str]]) -> None:
    from keel.config import load

    settings = load()
    worker = settings.worker
    queue.put((list(worker.queues), worker.processes, worker.max_async_tasks, settings.app.env))


def test_a_spawned_worker_process_gets_the_command_line_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = ["worker", "--env", "test", "--queues", "gpu", "--workers", "3"]
    args = build_parser(argv).parse_args([*argv, "--max-async-tasks", "4"])
    for name in ("APP_ENV", "WORKER_QUEUES", "WORKER_PROCESSES", "WORKER_MAX_ASYNC_TASKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEEL_ROOT", str(REPO))
    # The test env's secrets need its committed key; the child reads the same environment.
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(REPO / "secrets" / "keys" / "test.agekey"))
    _hand_to_processes(args)
    assert os.environ["WORKER_QUEUES"] == "gpu"

    spawn = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[tuple[list[str], int, int, str]] = spawn.Queue()
    child = spawn.Process(target=_settings_in_child, args=(results,))
    child.start()
    try:
        got = results.get(timeout=60)
    finally:
        child.join(30)
    assert got == (["gpu"], 3, 4, "test")
