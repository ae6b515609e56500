"""Keel's prod stack on a three-node swarm: deploy, roll, roll back, scale, lose a node, rotate.

In order, on one deployment; each test leaves it converged and healthy. Every load is wrk from
the cluster's client host through the proxy, bounded in time; jobs are checked in PostgreSQL.
"""

from __future__ import annotations

import time

import pytest

from keel.stack import converge
from tests.swarm.conftest import FirstDeploy
from tests.swarm.harness import (
    CONNECTIONS,
    LOCAL_IMAGE,
    STACK,
    Cluster,
    Deployment,
    Jobs,
    Load,
    LoadResult,
    derived_image,
    http_status,
    names_resolve,
    push,
    task_nodes,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.swarm, pytest.mark.timeout(900)]
APP = ("api", "worker")
ALL = ("postgres", "redis", "api", "worker", "proxy")


def services(*names: str) -> list[str]:
    return [f"{STACK}_{name}" for name in names]


def converged(timeout: float = 240) -> dict[str, converge.ServiceState]:
    return converge.wait(services(*ALL), timeout=timeout, poll=2)


def assert_every_accepted_job_succeeded(
    jobs: Jobs, mark: int, result: LoadResult, *, strict: bool = True
) -> None:
    """Each 202 (its job id read from the answer) is one succeeded job, none failed or lost.

    ``strict``: besides those, no other job since ``mark`` is left unfinished either. wrk drops
    the answers of the requests in flight when its time is up (one per connection at most):
    those jobs were stored and run too, so up to CONNECTIONS more succeeded rows are expected.
    """
    assert len(result.ids) == result.accepted, str(result)
    assert jobs.wait_succeeded(result.ids) == {"succeeded": len(set(result.ids))}
    if strict:
        counts = jobs.wait_finished(mark)
        assert set(counts) == {"succeeded"}, counts
        assert 0 <= counts["succeeded"] - result.accepted <= CONNECTIONS, (counts, str(result))


def rejoin(cluster: Cluster, node: int) -> None:
    """Start a killed node again and wait until it is Ready, has stopped its orphaned tasks
    (they report "non-zero exit (255)"), resolves the stack's services and the stack is
    converged: the next test must not meet the aftermath of this one."""
    cluster.sh("start", str(node))
    wait_for("the node to rejoin", lambda: cluster.ready_nodes() == 3, 120)

    def orphans_gone() -> bool:
        label = f"label=com.docker.stack.namespace={STACK}"
        return not cluster.docker(node, "ps", "-q", "--filter", label).split()

    wait_for(f"node {node} to stop its orphaned tasks", orphans_gone, 120)
    image = converge.spec_image(f"{STACK}_api")
    wait_for(
        f"node {node} to resolve the stack's services again",
        lambda: names_resolve(cluster, node, image, "redis", "postgres", "api"),
        180,
        poll=3,
    )
    converged()


def release(tag: str, **env: str) -> str:
    """A new release of the app image, pushed to the cluster's registry: its reference."""
    return push(derived_image(LOCAL_IMAGE, tag, env))[0]


def test_deploy_converges_spread_pinned_and_hardened(first: FirstDeploy, cluster: Cluster) -> None:
    assert first.code == 0, first.output[-3000:]
    assert "converged and healthy" in first.output
    assert "migrations done" in first.output
    states = converged(timeout=30)
    assert {name: s.running for name, s in states.items()} == {
        f"{STACK}_postgres": 1,
        f"{STACK}_redis": 1,
        f"{STACK}_api": 2,
        f"{STACK}_worker": 2,
        f"{STACK}_proxy": 1,
    }
    # Replicas spread over nodes; stateful and edge services on the labelled manager.
    assert len(set(task_nodes(cluster, "api"))) == 2, task_nodes(cluster, "api")
    assert len(set(task_nodes(cluster, "worker"))) == 2, task_nodes(cluster, "worker")
    for name in ("postgres", "redis", "proxy"):
        assert task_nodes(cluster, name) == ["ksw1"], name
    assert http_status(cluster, "/health/ready") == 200
    # The hardening Swarm cannot set per service holds on the node: no-new-privileges.
    postgres = cluster.docker(1, "ps", "-q", "--filter", f"name={STACK}_postgres").split()[0]
    status = cluster.docker(1, "exec", postgres, "grep", "NoNewPrivs", "/proc/1/status")
    assert status.split() == ["NoNewPrivs:", "1"]
    fmt = "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}}"
    assert cluster.docker(1, "inspect", "--format", fmt, postgres).split() == ["true", "[ALL]"]
    secrets = cluster.docker(1, "secret", "ls", "--format", "{{.Name}}").split()
    assert len([s for s in secrets if s.startswith(f"{STACK}_")]) == 4, secrets


def test_rolling_update_under_load_fails_no_request_and_runs_each_job_once(
    deployment: Deployment, cluster: Cluster, token: str
) -> None:
    jobs = Jobs(cluster)
    mark = jobs.high_water()
    new = release("r2")
    load = Load(cluster, token, seconds=80)
    time.sleep(3)
    code, output, _ = deployment.deploy(new)
    result = load.result()
    assert code == 0, output[-3000:]
    for name in APP:
        assert converge.spec_image(f"{STACK}_{name}") == new
    assert result.accepted > 100, str(result)
    assert result.failed == 0, str(result)
    assert_every_accepted_job_succeeded(jobs, mark, result)
    assert jobs.max_attempts(mark) == 1  # old workers drained: no job needed a second try


def test_broken_release_is_rolled_back_by_swarm_with_no_failed_request(
    deployment: Deployment, cluster: Cluster, token: str
) -> None:
    before = converge.spec_image(f"{STACK}_api")
    # Migrates fine (no Redis needed) but can never become ready or heartbeat.
    broken = release("broken", REDIS_HOST="broken.invalid")
    jobs = Jobs(cluster)
    mark = jobs.high_water()
    load = Load(cluster, token, seconds=100)
    time.sleep(3)
    code, output, _ = deployment.deploy(broken)
    result = load.result()
    assert code == 1, output[-3000:]
    assert "update failed, Swarm rolled back (the previous release runs again)" in output
    assert output.strip().splitlines()[-1].startswith("keel stack deploy: ")
    assert "Traceback" not in output
    converged()
    for name in APP:
        assert converge.spec_image(f"{STACK}_{name}") == before
    assert result.failed == 0, str(result)
    assert_every_accepted_job_succeeded(jobs, mark, result)


def test_scale_api_2_4_2_under_load_fails_no_request(cluster: Cluster, token: str) -> None:
    load = Load(cluster, token, seconds=60)
    try:
        for replicas in (4, 2):
            cluster.docker(1, "service", "scale", "-d", f"{STACK}_api={replicas}")
            states = converged()
            assert states[f"{STACK}_api"].running == replicas
            time.sleep(6)  # the proxy re-resolves every 2 s: let it see the new set under load
    finally:
        cluster.docker(1, "service", "scale", "-d", f"{STACK}_api=2", check=False)
    result = load.result()
    assert result.failed == 0, str(result)
    assert result.accepted > 100, str(result)


def test_losing_a_worker_node_mid_load_loses_no_job(
    deployment: Deployment, cluster: Cluster, token: str
) -> None:
    jobs = Jobs(cluster)
    victim = next(n for n in (3, 2) if f"ksw{n}" in task_nodes(cluster, "worker"))
    wanted = {name: converge.service_state(f"{STACK}_{name}").wanted for name in APP}
    load = Load(cluster, token, seconds=60)
    time.sleep(8)
    cluster.sh("kill", str(victim))
    killed = time.monotonic()

    def recovered() -> bool:
        return all(
            len([n for n in task_nodes(cluster, name) if n != f"ksw{victim}"]) == wanted[name]
            for name in APP
        )

    try:
        wait_for("api and worker healthy again on the other nodes", recovered, 180, poll=1)
        recovery = time.monotonic() - killed
        result = load.result()
        counts = jobs.wait_succeeded(result.ids, timeout=240)
    finally:
        rejoin(cluster, victim)
    print(f"node {victim} lost: tasks healthy elsewhere after {recovery:.1f} s; load: {result}")
    # Every accepted job finished, exactly once in effect (one succeeded row each, none failed).
    # A request cut by the node loss got an error, not a 202: if its job was stored, the sweeper
    # requeues it after WORKER_REQUEUE_AFTER; it is not part of this promise.
    assert counts == {"succeeded": len(set(result.ids))}, counts
    assert len(result.ids) == result.accepted > 50, str(result)


def test_secret_rotation_rolls_the_services_and_prunes_the_old_secret(
    deployment: Deployment, cluster: Cluster, token: str
) -> None:
    def secret_names() -> set[str]:
        out = cluster.docker(1, "secret", "ls", "--format", "{{.Name}}")
        return {name for name in out.split() if name.startswith(f"{STACK}_app_secrets_")}

    (old,) = secret_names()
    rotated = deployment.keel("secrets", "rotate", "prod", "--root", str(deployment.root))
    assert rotated.returncode == 0, rotated.stderr
    load = Load(cluster, token, seconds=60)
    time.sleep(2)
    code, output, _ = deployment.deploy(deployment.images["KEEL_IMAGE"])
    result = load.result()
    assert code == 0, output[-3000:]
    (new,) = secret_names()
    assert new != old
    for name in APP:
        spec = cluster.docker(
            1,
            "service",
            "inspect",
            "--format",
            "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}} {{end}}",
            f"{STACK}_{name}",
        )
        assert new in spec.split(), spec
    assert result.failed == 0, str(result)


def test_a_failing_migration_stops_the_deploy_before_the_app_is_touched(
    deployment: Deployment,
) -> None:
    before = {name: converge.spec_image(f"{STACK}_{name}") for name in APP}
    # The database host of this release does not resolve: `keel migrate` fails.
    bad = release("bad-migration", DB_HOST="broken.invalid", DB_CONNECT_RETRIES="0")
    code, output, _ = deployment.deploy(bad, timeout=300)
    assert code == 1, output[-3000:]
    last = output.strip().splitlines()[-1]
    assert last.startswith("keel stack deploy: migration failed"), last
    assert "the app services were not updated" in last
    assert "Traceback" not in output
    assert {name: converge.spec_image(f"{STACK}_{name}") for name in APP} == before
    converged(timeout=60)


def test_a_missing_node_label_is_refused_before_anything_changes(
    deployment: Deployment, cluster: Cluster
) -> None:
    cluster.docker(1, "node", "update", "--label-rm", "keel.edge", "ksw1")
    try:
        code, output, _ = deployment.deploy(deployment.images["KEEL_IMAGE"], timeout=120)
    finally:
        cluster.docker(1, "node", "update", "--label-add", "keel.edge=true", "ksw1")
    assert code == 1
    assert output.strip().splitlines()[-1] == (
        "keel stack deploy: no ready node has the label keel.edge=true that proxy need: "
        "docker node update --label-add keel.edge=true NODE"
    )


def test_an_unreachable_registry_is_one_clear_line(cluster: Cluster) -> None:
    import subprocess

    from tests.swarm.harness import IMAGES_SH

    done = subprocess.run(
        [str(IMAGES_SH), "push", LOCAL_IMAGE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "REGISTRY": "198.51.100.9:5000"},
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "push of 198.51.100.9:5000/" in lines[0]
    assert "registry 198.51.100.9:5000 not reachable" in lines[0]
