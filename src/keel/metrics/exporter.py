"""The one ``/metrics`` of a process tree, served by its main process on an internal port.

Worker processes (Granian's, Taskiq's) write their values to files in the multiprocess
directory; this server adds them up at each scrape (prometheus_client's MultiProcessCollector),
plus build info, the log volume's free space and, in the api, the queue and worker state.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from loguru import logger
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from keel import __version__
from keel.config import Settings
from keel.metrics.multiproc import ENV

_PID_FILE = re.compile(r"_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LiveProcesses(Collector):
    """MultiProcessCollector after forgetting the gauges of processes that are gone (a
    respawned Granian worker would otherwise keep counting its in-flight requests)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.inner = MultiProcessCollector(None, path=path)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Any]:
        for name in glob.glob(os.path.join(self.path, "gauge_live*_*.db")):
            match = _PID_FILE.search(name)
            if match and not _alive(int(match.group(1))):
                mark_process_dead(int(match.group(1)), self.path)  # type: ignore[no-untyped-call]
        yield from self.inner.collect()  # type: ignore[no-untyped-call]


class HostCollector(Collector):
    """Build info and the log volume (when this process writes log files)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.revision = os.environ.get("KEEL_REVISION", "unknown")

    def collect(self) -> Iterator[GaugeMetricFamily]:
        info = GaugeMetricFamily(
            "keel_build_info", "Version and revision", labels=["version", "revision"]
        )
        info.add_metric([__version__, self.revision], 1)
        yield info
        log_file = self.settings.log.file or self.settings.log.startup_file
        if not log_file:
            return
        directory = self.settings.resolve_path(log_file).parent
        try:
            usage = shutil.disk_usage(directory)
        except OSError:
            return
        yield GaugeMetricFamily(
            "keel_log_volume_free_bytes", "Free bytes on the log volume", value=usage.free
        )
        yield GaugeMetricFamily(
            "keel_log_volume_size_bytes", "Size of the log volume", value=usage.total
        )


def build_registry(settings: Settings, *, with_state: bool) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    path = os.environ.get(ENV)
    if path:
        registry.register(LiveProcesses(path))
    registry.register(HostCollector(settings))
    if with_state:
        from keel.metrics.state import StateCollector

        registry.register(StateCollector(settings))
    return registry


def _handler(registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404, "only /metrics here")
                return
            body = generate_latest(registry)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # one line per scrape is noise; Prometheus tracks scrape health itself

    return Handler


class Exporter:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.port = int(server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start(settings: Settings, process: str) -> Exporter | None:
    """Serve /metrics in a thread; a taken port is logged, never fatal (serving comes first)."""
    metrics = settings.metrics
    if not metrics.enabled:
        return None
    port = metrics.port if process == "api" else metrics.worker_port
    registry = build_registry(settings, with_state=process == "api")
    try:
        server = ThreadingHTTPServer((metrics.host, port), _handler(registry))
    except OSError as exc:
        setting = "METRICS_PORT" if process == "api" else "METRICS_WORKER_PORT"
        logger.bind(lifecycle=True).error(
            "metrics exporter not started: {}:{}: {} (set {} or METRICS_ENABLED=false)",
            metrics.host,
            port,
            exc.strerror or exc,
            setting,
        )
        return None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    exporter = Exporter(server)
    logger.bind(lifecycle=True).info(
        "metrics on http://{}:{}/metrics ({} process tree, dir {})",
        metrics.host,
        exporter.port,
        process,
        Path(os.environ.get(ENV, "-")).name,
    )
    return exporter
