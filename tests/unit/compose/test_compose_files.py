"""The Compose files and the runbook, read statically (the real stack: tests/integration).

What a reviewer would check by eye, held by a test: every long-running service has a
healthcheck, start order is enforced by conditions, ports bind to loopback only, secrets
never ride in environment variables, and every command the runbook names exists.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from ruamel.yaml import YAML
from tests.support import REPO

ONE_SHOTS = {"credentials", "migrate"}


def load(path: str) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load((REPO / path).read_text())
    return data


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return load("compose.yaml")


def test_base_services_health_and_order(base: dict[str, Any]) -> None:
    services = base["services"]
    assert set(services) == {"credentials", "postgres", "redis", "migrate", "api", "worker"}
    assert "version" not in base
    assert "name" not in base  # docker-compose 1.29 rejects a top-level name
    for name, service in services.items():
        check = service.get("healthcheck", {})
        if name in ONE_SHOTS:
            assert check.get("disable") is True, name
            assert service["restart"] == "no", name
        else:
            assert check.get("test"), f"{name} has no healthcheck"
            assert check.get("start_period"), f"{name} has no start_period"
    assert services["api"]["healthcheck"]["test"] == ["CMD", "keel", "healthcheck", "api"]
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "keel", "healthcheck", "worker"]
    for name in ("api", "worker"):
        needs = services[name]["depends_on"]
        assert needs["postgres"]["condition"] == "service_healthy"
        assert needs["redis"]["condition"] == "service_healthy"
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["init"] is True


def test_shutdown_budget_exceeds_the_app_timeouts(base: dict[str, Any]) -> None:
    def seconds(text: str) -> int:
        return int(text.rstrip("s"))

    # Defaults of HTTP_WORKERS_KILL_TIMEOUT (10 s) and WORKER_SHUTDOWN_TIMEOUT (20 s).
    from keel.config.sections.http import HttpSettings
    from keel.config.sections.worker import WorkerSettings

    assert seconds(base["services"]["api"]["stop_grace_period"]) > (
        HttpSettings().workers_kill_timeout
    )
    assert seconds(base["services"]["worker"]["stop_grace_period"]) > (
        WorkerSettings().shutdown_timeout
    )


@pytest.mark.parametrize(
    "path",
    [
        "compose.yaml",
        "configs/dev/compose.yaml",
        "configs/test/compose.yaml",
        "configs/prod/compose.yaml",
        "compose.gpu.yaml",
    ],
)
def test_ports_loopback_and_no_secret_in_env(path: str) -> None:
    services = load(path)["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{path}: {name} publishes {port}"
        for key, value in (service.get("environment") or {}).items():
            secretish = re.search(r"PASSWORD|SECRET|TOKEN|AGE_KEY$", key)
            assert not secretish or key.endswith("_FILE"), f"{path}: {name} sets {key}={value}"


def test_prod_overlay_is_hardened_and_proxy_is_the_only_port() -> None:
    services = load("configs/prod/compose.yaml")["services"]
    published = [name for name, service in services.items() if service.get("ports")]
    assert published == ["proxy"]
    for name in ("api", "worker", "postgres", "redis", "proxy"):
        assert services[name]["read_only"] is True, name
        assert services[name]["cap_drop"] == ["ALL"], name
        assert "no-new-privileges=true" in services[name]["security_opt"], name
        assert services[name]["restart"] == "unless-stopped", name
    assert "--appendonly" in services["redis"]["command"]


def test_gpu_overlay_reserves_an_nvidia_device() -> None:
    worker = load("compose.gpu.yaml")["services"]["worker-gpu"]
    device = worker["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    assert worker["command"] == ["worker", "--queues", "gpu"]
    assert {"NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES"} <= set(worker["environment"])


def test_plain_compose_up_means_the_dev_overlay() -> None:
    env = dict(
        line.split("=", 1)
        for line in (REPO / ".env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert env["APP_ENV"] == "dev"
    assert env["COMPOSE_FILE"].split(":") == ["compose.yaml", "configs/dev/compose.yaml"]


def test_runbook_commands_exist() -> None:
    text = (REPO / "docs" / "operations.md").read_text()
    targets = set(re.findall(r"^([a-zA-Z][\w-]*):", (REPO / "Makefile").read_text(), re.M))
    named = set(re.findall(r"`make ([a-z][\w-]*)", text))
    assert named, "the runbook names no make target"
    assert named <= targets, f"unknown make targets in docs/operations.md: {named - targets}"
    for script in set(re.findall(r"containers/[\w/-]+\.sh", text)):
        path = REPO / script
        assert path.is_file(), script
        assert path.stat().st_mode & 0o111, f"{script} is not executable"


def test_containerfile_contract() -> None:
    text = (REPO / "Containerfile").read_text()
    final = text.rsplit("\nFROM ", 1)[1]
    assert "USER 10001:10001" in final
    assert 'ENTRYPOINT ["keel"]' in final
    assert 'CMD ["serve"]' in final
    assert "EXPOSE 8000" in final
    assert 'CMD ["keel", "healthcheck", "api"]' in final
    assert "uv sync --frozen --no-dev" in text
    dockerignore = (REPO / ".dockerignore").read_text()
    assert "secrets/keys/" in dockerignore
    assert (REPO / ".containerignore").resolve() == (REPO / ".dockerignore").resolve()
