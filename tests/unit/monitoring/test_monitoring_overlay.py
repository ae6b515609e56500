"""The monitoring overlay's configs as the real tools read them (promtool, amtool), and its
Compose shape: loopback-only ports, hardened like the prod services, DNS discovery of replicas."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

MONITORING = Path(__file__).resolve().parents[3] / "configs" / "monitoring"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"needs {name}: apt-get install prometheus prometheus-alertmanager")
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=MONITORING, capture_output=True, text=True, timeout=60, check=False
    )


def test_prometheus_config_loads_with_its_rules() -> None:
    done = _run(_tool("promtool"), "check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "16 rules found" in done.stdout


def test_alertmanager_config_is_valid() -> None:
    done = _run(_tool("amtool"), "check-config", "alertmanager.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_replica_is_discovered_by_dns() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["keel-api"]["dns_sd_configs"] == [
        {"names": ["api"], "type": "A", "port": 9464, "refresh_interval": "15s"}
    ]
    assert jobs["keel-worker"]["dns_sd_configs"][0]["names"] == ["worker"]
    gpu = yaml.safe_load((MONITORING.parents[1] / "compose.gpu.yaml").read_text())
    assert gpu["services"]["worker-gpu"]["networks"]["default"]["aliases"] == ["worker"]
    assert jobs["keel-worker"]["dns_sd_configs"][0]["port"] == 9465


def test_overlay_ports_are_loopback_and_services_hardened() -> None:
    overlay: dict[str, Any] = yaml.safe_load((MONITORING / "compose.yaml").read_text())
    assert set(overlay["services"]) == {"prometheus", "alertmanager"}
    for name, service in overlay["services"].items():
        assert all(str(p).startswith("127.0.0.1:") for p in service["ports"]), name
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert service["healthcheck"]["test"][0] == "CMD", name
