"""Keel on the three-node test swarm (containers/swarm/): the figures of docs/cluster.md.

1. Image distribution: push of the app image to the cluster's registry, then a cold pull on
   each node (the image removed there first); and the save|load fallback per node.
2. Deploy of the prod stack to converged and healthy (first deploy, empty volumes).
3. Rolling update of api x2 + worker x2 to a new release under wrk load: seconds, failed
   requests, jobs accepted vs finished.
4. Rollback: a release that can never become healthy, until Swarm has rolled it back.
5. Node loss: a worker node's dockerd and every process on it killed under load: seconds until
   api and worker are back to 2 healthy tasks elsewhere, accepted jobs lost.

Needs root, wrk and the app image on the host daemon (`make test-swarm` prerequisites); brings
the cluster up itself (`make cluster-down` removes it). Without them it says what is missing.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.swarm.harness import (  # noqa: E402
    DOCKER,
    HOST_DAEMON,
    IMAGES_SH,
    LOCAL_IMAGE,
    SERVICE_IMAGES,
    STACK,
    Cluster,
    Deployment,
    Jobs,
    Load,
    derived_image,
    login,
    missing_prerequisites,
    push,
    remove_stack_volumes,
    run,
    task_nodes,
    wait_for,
)

from keel.stack import converge  # noqa: E402

ALL = [f"{STACK}_{name}" for name in ("postgres", "redis", "api", "worker", "proxy")]


def figure(name: str, value: str) -> None:
    print(f"  {name:<52} {value}", flush=True)


def clear_node_images(cluster: Cluster, node: int) -> None:
    """Node ``node`` without any image (no container runs there once the stack is gone)."""
    cluster.docker(node, "container", "prune", "-f")
    cluster.docker(node, "image", "prune", "-a", "-f", timeout=300)


def distribution(cluster: Cluster) -> str:
    """Cold: an empty registry (service and volume recreated), nodes 2 and 3 without images."""
    cluster.docker(1, "service", "rm", "keel-registry", check=False)
    wait_for(
        "the registry's container to go",
        lambda: not cluster.docker(1, "ps", "-aq", "--filter", "name=keel-registry").split(),
        60,
    )
    cluster.docker(1, "volume", "rm", "keel-registry")
    run([str(IMAGES_SH), "registry"])
    started = time.monotonic()
    ref = push(LOCAL_IMAGE)[0]
    figure("push app image to an empty cluster registry", f"{time.monotonic() - started:.1f} s")
    for node in (2, 3):
        clear_node_images(cluster, node)
        started = time.monotonic()
        cluster.docker(node, "pull", "-q", ref, timeout=300)
        figure(f"cold pull of the app image on node {node}", f"{time.monotonic() - started:.1f} s")
    clear_node_images(cluster, 2)
    tag = "keel-bench-load:latest"
    run([DOCKER, "-H", HOST_DAEMON, "tag", LOCAL_IMAGE, tag])
    started = time.monotonic()
    run(
        [str(IMAGES_SH), "load", tag],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NODE_HOSTS": cluster.host(2)},
    )
    took = time.monotonic() - started
    figure("save | load of the app image into one node (fallback)", f"{took:.1f} s")
    run([DOCKER, "-H", HOST_DAEMON, "image", "rm", tag], check=False)
    return ref


def main() -> int:
    why = missing_prerequisites()
    if why:
        print(f"bench_swarm: skipped: needs {why}")
        return 0
    cluster = Cluster()
    started = time.monotonic()
    cluster.up()
    figure("cluster up (3 nodes + registry)", f"{time.monotonic() - started:.1f} s")
    os.environ["DOCKER_HOST"] = cluster.host(1)
    with tempfile.TemporaryDirectory(prefix="bench-swarm-") as tmp:
        deployment = Deployment.create(Path(tmp))
        deployment.keel("stack", "rm", "prod", timeout=180)
        remove_stack_volumes(cluster)
        app = distribution(cluster)
        refs = push(*SERVICE_IMAGES.values())
        deployment.images = dict(zip(SERVICE_IMAGES, refs, strict=True))
        code, output, seconds = deployment.deploy(app)
        if code != 0:
            print(output[-2000:])
            return 1
        figure("deploy prod to converged and healthy", f"{seconds:.1f} s")
        token = login(cluster)
        jobs = Jobs(cluster)

        new = push(derived_image(LOCAL_IMAGE, "bench-r2"))[0]
        load = Load(cluster, token, seconds=75)
        time.sleep(3)
        code, output, seconds = deployment.deploy(new)
        result = load.result()
        counts = jobs.wait_succeeded(result.ids)
        figure("rolling update api x2 + worker x2 (deploy command)", f"{seconds:.1f} s")
        figure("  requests failed during it", f"{result.failed} of {result.requests}")
        figure("  jobs accepted / succeeded", f"{result.accepted} / {counts.get('succeeded', 0)}")

        broken = push(derived_image(LOCAL_IMAGE, "bench-broken", {"REDIS_HOST": "broken.invalid"}))[
            0
        ]
        load = Load(cluster, token, seconds=90)
        code, output, seconds = deployment.deploy(broken)
        result = load.result()
        converge.wait(ALL, timeout=240, poll=2)
        figure(
            "broken release: deploy until rolled back (api+worker)",
            f"{seconds:.1f} s (exit {code})",
        )
        figure("  requests failed during it", f"{result.failed} of {result.requests}")

        victim = next(n for n in (3, 2) if f"ksw{n}" in task_nodes(cluster, "worker"))
        load = Load(cluster, token, seconds=50)
        time.sleep(5)
        cluster.sh("kill", str(victim))
        killed = time.monotonic()
        wait_for(
            "recovery",
            lambda: all(
                len([n for n in task_nodes(cluster, s) if n != f"ksw{victim}"]) == 2
                for s in ("api", "worker")
            ),
            180,
            poll=0.5,
        )
        recovery = time.monotonic() - killed
        result = load.result()
        counts = jobs.wait_succeeded(result.ids, timeout=240)
        lost = len(set(result.ids)) - counts.get("succeeded", 0)
        cluster.sh("start", str(victim))
        wait_for("rejoin", lambda: cluster.ready_nodes() == 3, 120)
        figure("node loss: lost tasks healthy elsewhere after", f"{recovery:.1f} s")
        figure("  accepted jobs lost / failed requests", f"{lost} / {result.failed}")
        deployment.keel("stack", "rm", "prod", timeout=180)
    return 0


if __name__ == "__main__":
    sys.exit(main())
