"""The three-node test swarm, brought up by the project's own scripts, and one prod deployment.

`make test-swarm` runs these (CI: its own stage). The cluster stays up between runs when it
already is (containers/swarm/cluster.sh up is idempotent); `make cluster-down` removes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.swarm.harness import (
    LOCAL_IMAGE,
    SERVICE_IMAGES,
    Cluster,
    Deployment,
    login,
    missing_prerequisites,
    push,
    remove_stack_volumes,
)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    why = missing_prerequisites()
    if why:
        pytest.skip(f"the test swarm needs {why}")
    swarm = Cluster()
    swarm.up()
    with pytest.MonkeyPatch.context() as patch:
        # keel.stack's own readers (converge, swarm) talk to the manager.
        patch.setenv("DOCKER_HOST", swarm.host(1))
        yield swarm


@dataclass
class FirstDeploy:
    deployment: Deployment
    code: int
    output: str
    seconds: float
    image: str


@pytest.fixture(scope="session")
def first(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> FirstDeploy:
    deployment = Deployment.create(tmp_path_factory.mktemp("swarm"))
    refs = push(LOCAL_IMAGE, *SERVICE_IMAGES.values())
    deployment.images = dict(zip(SERVICE_IMAGES, refs[1:], strict=True))
    # A previous run's stack would make this an update, not a first deploy; its volumes would
    # hold a database initialised with another run's password.
    deployment.keel("stack", "rm", "prod", timeout=180)
    remove_stack_volumes(cluster)
    code, output, seconds = deployment.deploy(refs[0])
    return FirstDeploy(deployment, code, output, seconds, refs[0])


@pytest.fixture(scope="session")
def deployment(first: FirstDeploy) -> Deployment:
    assert first.code == 0, first.output[-3000:]
    return first.deployment


@pytest.fixture(scope="session")
def token(cluster: Cluster, deployment: Deployment) -> str:
    return login(cluster)
