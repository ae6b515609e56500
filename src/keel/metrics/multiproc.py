"""The multiprocess directory: fresh per ``keel serve`` / ``keel worker``, set before import.

prometheus_client decides at import time (``values.get_value_class()``) whether values live in
process memory or in mmap files under ``PROMETHEUS_MULTIPROC_DIR``; Granian and Taskiq fork
their workers, so the directory must be in the environment before the first import anywhere,
and must not hold files of an earlier run (their counters would be added to ours).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


_ORPHAN = re.compile(r"^keel-metrics-[a-z]+-(\d+)-")


def _remove_orphans(base: str) -> None:
    """Directories of earlier runs whose process is gone (killed before its atexit ran)."""
    for entry in Path(base).glob("keel-metrics-*"):
        match = _ORPHAN.match(entry.name)
        if match is None or not entry.is_dir():
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except PermissionError:
            continue  # alive, someone else's


def prepare(process: str) -> str | None:
    """Create a fresh directory for this process tree and export it; removed at exit.

    Returns None (and says so) when prometheus_client is already imported, as when a test
    calls ``keel.cli.main`` in its own process: setting the directory then would only make the
    exporter read an empty directory while every process counts in memory.
    """
    if "prometheus_client" in sys.modules and os.environ.get(ENV) is None:
        print(
            f"keel {process}: prometheus_client was imported before {ENV} was set; "
            "metrics stay per process",
            file=sys.stderr,
        )
        return None
    base = os.environ.get("TMPDIR") or "/tmp"  # noqa: S108 - the containers' tmpfs
    _remove_orphans(base)
    owner = os.getpid()
    path = tempfile.mkdtemp(prefix=f"keel-metrics-{process}-{owner}-", dir=base)
    os.environ[ENV] = path

    def cleanup() -> None:
        if os.getpid() == owner:  # forked children inherit atexit handlers
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(cleanup)
    return path
