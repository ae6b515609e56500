"""Rollout and scheduling invariants of the rendered manifests: disruption budgets, spread,
graceful termination longer than the app's own shutdown budget, and the GPU overlay."""

from __future__ import annotations

from typing import Any

import pytest
from k8s_render import OVERLAYS, containers, is_keel, key, overlay_settings, pod_spec, render

from keel.tasks.commands import taskiq_worker_args


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # matchExpressions: extend this helper
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _deployments(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == "Deployment"]


def _pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = doc["spec"]["template"]["metadata"]["labels"]
    return labels


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_deployment_has_one_budget_matching_its_pods_only(overlay: str) -> None:
    docs = render(overlay)
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    for deployment in _deployments(docs):
        own = [b for b in budgets if _matches(b["spec"]["selector"], _pod_labels(deployment))]
        assert len(own) == 1, f"{key(deployment)}: {[key(b) for b in own]}"
        assert own[0]["spec"]["selector"] == deployment["spec"]["selector"], key(deployment)
        # Budget and Deployment agree: a drain never waits for more pods than exist.
        assert own[0]["spec"]["maxUnavailable"] >= 1
    assert len(budgets) == len(_deployments(docs))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_select_ready_api_pods_on_a_named_port(overlay: str) -> None:
    docs = render(overlay)
    for service in (
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "keel-api"
    ):
        targets = [
            d
            for d in docs
            if d["kind"] in {"Deployment", "StatefulSet"}
            and _matches({"matchLabels": service["spec"]["selector"]}, _pod_labels(d))
        ]
        assert [key(t) for t in targets] == ["Deployment/keel-api"]
        ports = {p["name"] for c in pod_spec(targets[0])["containers"] for p in c["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_replicas_spread_over_nodes(overlay: str) -> None:
    for deployment in _deployments(render(overlay)):
        spread = pod_spec(deployment).get("topologySpreadConstraints", [])
        by_key = {c["topologyKey"]: c for c in spread}
        host = by_key.get("kubernetes.io/hostname")
        assert host is not None, key(deployment)
        assert host["whenUnsatisfiable"] == "DoNotSchedule"
        assert host["maxSkew"] == 1
        # Tainted (e.g. GPU) nodes the pods cannot use are no spread domains.
        assert host["nodeTaintsPolicy"] == "Honor"
        for constraint in spread:
            assert _matches(constraint["labelSelector"], _pod_labels(deployment)), key(deployment)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rollouts_keep_capacity(overlay: str) -> None:
    for deployment in _deployments(render(overlay)):
        strategy = deployment["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate"
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0, key(deployment)


def _grace(doc: dict[str, Any]) -> int:
    grace: int = pod_spec(doc)["terminationGracePeriodSeconds"]
    return grace


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grace_period_exceeds_the_apps_own_shutdown_budget(overlay: str) -> None:
    docs = render(overlay)
    settings = overlay_settings(docs)
    args = taskiq_worker_args(settings, [])
    # What `keel worker` hands Taskiq: in-flight jobs' budget, then the broker's close.
    worker_budget = float(args.wait_tasks_timeout or 0) + float(args.shutdown_timeout)
    assert worker_budget >= settings.worker.shutdown_timeout
    checked = set()
    for deployment in _deployments(docs):
        container = pod_spec(deployment)["containers"][0]
        if container["args"][0] == "serve":
            pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
            budget = pre_stop + settings.http.workers_kill_timeout
        else:
            assert container["args"][0] == "worker"
            budget = worker_budget
        # A margin for the interpreter's own exit and the log flush.
        assert _grace(deployment) >= budget + 5, f"{key(deployment)}: {_grace(deployment)} s"
        checked.add(container["args"][0])
    assert checked == {"serve", "worker"}


def _gpu_parts(doc: dict[str, Any]) -> list[str]:
    """Where an object asks for GPUs or GPU nodes."""
    if doc["kind"] not in {"Deployment", "StatefulSet", "Job"}:
        return []
    spec = pod_spec(doc)
    found = [f"nodeSelector {k}" for k in spec.get("nodeSelector", {}) if "nvidia" in k]
    found += [f"toleration {t.get('key')}" for t in spec.get("tolerations", [])]
    for container in containers(spec):
        for kind in ("requests", "limits"):
            found += [
                f"{kind} {r}" for r in container.get("resources", {}).get(kind, {}) if "gpu" in r
            ]
    return found


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if not o.endswith("-gpu")])
def test_gpu_scheduling_only_in_gpu_overlays(overlay: str) -> None:
    assert {key(d): _gpu_parts(d) for d in render(overlay) if _gpu_parts(d)} == {}


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o.endswith("-gpu")])
def test_gpu_overlay_only_adds_the_gpu_worker(overlay: str) -> None:
    base_overlay = overlay.removesuffix("-gpu")
    plain = {key(d): d for d in render(base_overlay)}
    gpu = {key(d): d for d in render(overlay)}
    # Everything else is byte-for-byte what the plain overlay renders.
    assert {k: gpu[k] for k in plain} == plain
    added = sorted(set(gpu) - set(plain))
    assert added == ["Deployment/keel-worker-gpu", "PodDisruptionBudget/keel-worker-gpu"]
    worker = gpu["Deployment/keel-worker-gpu"]
    spec = pod_spec(worker)
    (container,) = spec["containers"]
    assert is_keel(container)
    assert container["args"] == ["worker", "--queues", "gpu"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in (
        spec["tolerations"]
    )
    # Same hardening, probes and grace as the default worker (the other tests check them too).
    default = pod_spec(gpu["Deployment/keel-worker"])
    assert spec["terminationGracePeriodSeconds"] == default["terminationGracePeriodSeconds"]
    assert container["livenessProbe"] == default["containers"][0]["livenessProbe"]
