"""The real Compose stack for the integration tests (pytest-docker, compose v1 or v2).

The images are built beforehand (`make test-integration` runs `containers/build.sh all`), so
the stack starts with `up -d --no-build` and one build tool keeps one build cache. Compose v1
has no `up --wait`: health is polled with `docker inspect` (tests/integration/stack.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.stack import (
    Api,
    Stack,
    compose_command,
    docker_available,
    image_exists,
    service_images,
    stage_key,
)
from tests.support import REPO, free_port

# Own name per checkout when several run at once (KEEL_IT_PROJECT=keel-it-mine).
PROJECT = os.environ.get("KEEL_IT_PROJECT", "keel-it")
KEEL_IMAGE = os.environ.get("KEEL_IMAGE", "keel:latest")
TEST_FILES = [REPO / "compose.yaml", REPO / "configs" / "test" / "compose.yaml"]
USER = ("it-user", "integration-password-42")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
            # Bringing stacks up and down takes longer than the suite's default timeout.
            item.add_marker(pytest.mark.timeout(600))


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment compose runs with (pytest-docker reads os.environ)."""
    why = docker_available()
    if why:
        pytest.skip(f"needs Docker: {why}")
    if not image_exists(KEEL_IMAGE):
        pytest.skip(f"needs the app image {KEEL_IMAGE}: run `make image-docker` (or make image)")
    env = {
        "APP_ENV": "test",
        "KEEL_IMAGE": KEEL_IMAGE,
        "HTTP_PORT": str(free_port()),
        "KEEL_AGE_KEY_FILE": str(
            stage_key(REPO / "secrets" / "keys" / "test.agekey", tmp_path_factory.mktemp("key"))
        ),
        **service_images(),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        yield env


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    return " ".join(compose_command())


@pytest.fixture(scope="session")
def docker_compose_file(stack_env: dict[str, str]) -> list[str]:
    return [str(path) for path in TEST_FILES]


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return PROJECT


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    # Not pytest-docker's `up --build --wait`: v1 prints usage for --wait and starts nothing.
    return ["down -v --remove-orphans", "up -d --no-build"]


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    return ["down -v --remove-orphans"]


@pytest.fixture(scope="session")
def stack(docker_services: Any, stack_env: dict[str, str]) -> Stack:
    """The test overlay, up and healthy (once per session)."""
    stack = Stack(PROJECT, TEST_FILES, stack_env)
    stack.wait_healthy(timeout=180)
    return stack


@pytest.fixture(scope="session")
def api(stack: Stack, stack_env: dict[str, str]) -> Api:
    """A logged-in API client on the published loopback port."""
    client = Api(f"http://127.0.0.1:{stack_env['HTTP_PORT']}")
    client.login(stack, *USER)
    return client


@pytest.fixture
def healthy(stack: Stack) -> Iterator[Stack]:
    """The stack, healthy before and after the test (tests that break things restore them)."""
    stack.wait_healthy(timeout=120)
    yield stack
    stack.wait_healthy(timeout=120)
