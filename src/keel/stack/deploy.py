"""``keel stack deploy|rm|status ENV``: one release onto a swarm, in an order Swarm lacks.

1. Pre-flight: a manager answers; every placement label the stack needs is on a Ready node.
2. Secrets and configs of this release exist (content-versioned names, stack-labelled).
3. PostgreSQL and Redis deployed and healthy.
4. The migrate job runs to completion (never beside an older one still running); a failure
   stops here with its error: the app services were not touched.
5. The whole stack deployed (api/worker roll start-first, health-gated, rollback on failure).
6. Wait until every service converged and is healthy, else name the service and task state.
7. Prune secrets and configs of older releases that no service uses any more.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from keel.stack import converge, swarm
from keel.stack.compose_files import StackError
from keel.stack.render import STATEFUL, Rendered, StackInputs, escape_dollars

LABEL = re.compile(r"^node\.labels\.(?P<key>[\w.-]+)\s*==\s*(?P<value>\S+)$")


def register(actions: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    deploy = actions.add_parser("deploy", help="render, migrate, deploy ENV and wait until healthy")
    common(deploy)
    deploy.add_argument("--timeout", type=float, default=600, help="seconds to converge (600)")
    deploy.set_defaults(handler=run_deploy)

    remove = actions.add_parser("rm", help="remove ENV's stack, its migrate job and secrets")
    remove.add_argument("env", metavar="ENV")
    remove.add_argument("--timeout", type=float, default=120)
    remove.set_defaults(handler=run_rm)

    status = actions.add_parser("status", help="services of ENV's stack and their tasks")
    status.add_argument("env", metavar="ENV")
    status.set_defaults(handler=run_status)


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S', time.gmtime())} keel stack: {message}", flush=True)


def progress(line: str) -> None:
    say(f"waiting: {line}")


def placement_labels(stack: dict[str, Any]) -> dict[str, list[str]]:
    """``key=value`` → the services whose constraints need a node with that label."""
    needed: dict[str, list[str]] = {}
    for name, service in stack["services"].items():
        for constraint in service["deploy"].get("placement", {}).get("constraints", []):
            match = LABEL.match(constraint)
            if match:
                needed.setdefault(f"{match['key']}={match['value']}", []).append(name)
    return needed


def check_labels(stack: dict[str, Any]) -> None:
    nodes = [n for n in swarm.nodes() if n.state == "ready" and n.availability == "active"]
    for label, services in placement_labels(stack).items():
        key, _, value = label.partition("=")
        if not any(node.labels.get(key) == value for node in nodes):
            raise StackError(
                f"no ready node has the label {label} that {', '.join(services)} need: "
                f"docker node update --label-add {label} NODE"
            )


def subset(stack: dict[str, Any], names: set[str]) -> dict[str, Any]:
    return {**stack, "services": {k: v for k, v in stack["services"].items() if k in names}}


def write(stack: dict[str, Any], path: Path) -> Path:
    clean = {k: v for k, v in stack.items() if k != "x-keel-migrate"}
    path.write_text(yaml.safe_dump(escape_dollars(clean), sort_keys=False), encoding="utf-8")
    return path


def stack_deploy(path: Path, name: str, *, prune: bool) -> None:
    args = ["stack", "deploy", "--resolve-image", "never", "-c", str(path)]
    if prune:
        args.append("--prune")
    swarm.must(*args, name, what=f"docker stack deploy {name}", timeout=300)


def ensure_objects(stack: dict[str, Any], name: str) -> None:
    for kind, key in (("secret", "secrets"), ("config", "configs")):
        for spec in stack[key].values():
            swarm.create_object(kind, spec["name"], Path(spec["file"]), name)


def migrate_args(stack: dict[str, Any], name: str, job_name: str) -> list[str]:
    job = stack["x-keel-migrate"]
    options: list[tuple[str, str]] = [
        ("--name", job_name),
        ("--mode", "replicated-job"),
        ("--restart-condition", "none"),
        ("--network", f"{name}_default"),
        ("--label", f"keel.release={stack['x-keel-release']}"),
    ]
    if "user" in job:
        options.append(("--user", str(job["user"])))
    for cap in job.get("cap_drop", []):
        options.append(("--cap-drop", str(cap)))
    for key, value in (job.get("environment") or {}).items():
        options.append(("--env", f"{key}={value}"))
    for secret in job["secrets"]:
        real = stack["secrets"][secret["source"]]["name"]
        target = secret["target"]
        options.append(
            (
                "--secret",
                f"source={real},target={target},uid={secret['uid']},gid={secret['gid']},"
                f"mode={secret['mode']:04o}",
            )
        )
    for config in job["configs"]:
        real = stack["configs"][config["source"]]["name"]
        options.append(("--config", f"source={real},target={config['target']}"))
    for mount in job.get("volumes", []):
        size = mount.get("tmpfs", {}).get("size")
        extra = f",tmpfs-size={size}" if size else ""
        options.append(("--mount", f"type=tmpfs,destination={mount['target']}{extra}"))
    logging = job.get("logging") or {}
    if logging.get("driver"):
        options.append(("--log-driver", str(logging["driver"])))
        for key, value in (logging.get("options") or {}).items():
            options.append(("--log-opt", f"{key}={value}"))
    flags = ["--detach", "--no-resolve-image"]
    if job.get("read_only"):
        flags.append("--read-only")
    if job.get("init"):
        flags.append("--init")
    command = [str(part) for part in job.get("command", [])]
    return ["service", "create", *flags, *swarm.args_for(options), job["image"], *command]


def job_state(job_name: str) -> tuple[str, str]:
    """(``running``|``complete``|``failed``|``absent``, detail) of the migrate job."""
    spec = swarm.inspect("service", job_name)
    if spec is None:
        return "absent", ""
    found = swarm.tasks(job_name)
    if not found:
        return "running", "no task yet"
    states = [task.state.split()[0].lower() if task.state else "" for task in found]
    if any(state in ("failed", "rejected", "shutdown") for state in states):
        errors = [task.error for task in found if task.error]
        return "failed", errors[0] if errors else found[0].state
    if all(state == "complete" for state in states):
        return "complete", ""
    return "running", found[0].describe()


def job_logs(job_name: str) -> str:
    result = swarm.docker("service", "logs", "--raw", "--tail", "40", job_name, timeout=30)
    lines = [line for line in (result.out + result.err).splitlines() if line.strip()]
    meaningful = [line for line in lines if "error" in line.lower() or "fail" in line.lower()]
    return (meaningful or lines or ["(no output)"])[-1].strip()


def run_migrations(stack: dict[str, Any], name: str, timeout: float) -> float:
    job_name = f"{name}_migrate"
    started = time.monotonic()
    deadline = started + timeout
    # Never beside an older migration: wait for it to end, then replace it.
    state, detail = job_state(job_name)
    if state == "running":
        say(f"an older migration ({job_name}) is still running: waiting for it")
        while state == "running":
            if time.monotonic() > deadline:
                raise StackError(f"the older migration {job_name} still runs ({detail})")
            time.sleep(1)
            state, detail = job_state(job_name)
    if state != "absent":
        swarm.must("service", "rm", job_name, what=f"removing the finished {job_name}")
        while swarm.inspect("service", job_name) is not None:
            time.sleep(0.5)
    swarm.must(*migrate_args(stack, name, job_name), what=f"creating the job {job_name}")
    while True:
        state, detail = job_state(job_name)
        if state == "complete":
            return time.monotonic() - started
        if state == "failed":
            raise StackError(
                f"migration failed ({detail}): {job_logs(job_name)}; the app services were not "
                f"updated (postgres/redis were); logs: docker service logs {job_name}"
            )
        if time.monotonic() > deadline:
            raise StackError(f"migration {job_name} did not finish in {timeout:.0f} s: {detail}")
        time.sleep(1)


def prune_objects(stack: dict[str, Any], name: str) -> list[str]:
    """Remove this stack's secrets/configs that the current release does not name."""
    removed = []
    for kind, key in (("secret", "secrets"), ("config", "configs")):
        current = {spec["name"] for spec in stack[key].values()}
        for obj in swarm.stack_objects(kind, name):
            if obj not in current and swarm.docker(kind, "rm", obj).ok:
                removed.append(obj)
    return removed


def deploy(rendered: Rendered, inputs: StackInputs, workdir: Path, timeout: float) -> None:
    stack = dict(rendered.stack)
    name = inputs.stack_name
    release = "-".join(spec["name"].rsplit("_", 1)[-1] for spec in stack["secrets"].values())
    stack["x-keel-release"] = release[:64]
    started = time.monotonic()
    swarm.manager_check()
    check_labels(stack)
    ensure_objects(stack, name)

    stateful = set(STATEFUL) & set(stack["services"])
    services = [f"{name}_{service}" for service in sorted(stateful)]
    before = converge.baseline(services)
    stack_deploy(write(subset(stack, stateful), workdir / "stateful.yaml"), name, prune=False)
    converge.wait(services, timeout=timeout, progress=progress, since=before)
    say(f"{', '.join(sorted(stateful))} healthy after {time.monotonic() - started:.1f} s")

    took = run_migrations(stack, name, timeout)
    say(f"migrations done in {took:.1f} s")

    services = [f"{name}_{service}" for service in stack["services"]]
    before = converge.baseline(services)
    stack_deploy(write(stack, workdir / "deploy.yaml"), name, prune=True)
    states = converge.wait(services, timeout=timeout, progress=progress, since=before)
    removed = prune_objects(stack, name)
    if removed:
        say(f"pruned older secrets/configs: {', '.join(removed)}")
    summary = ", ".join(
        f"{s.name.split('_', 1)[1]} {s.running}/{s.wanted}" for s in states.values()
    )
    say(f"{name} converged and healthy in {time.monotonic() - started:.1f} s: {summary}")


def run_deploy(args: argparse.Namespace) -> int:
    from keel.stack.commands import prepare, print_notes, stack_dir

    try:
        inputs, rendered, _ = prepare(args)
        print_notes(rendered)
        deploy(rendered, inputs, stack_dir(inputs.root, inputs.env), args.timeout)
    except StackError as exc:
        print(f"keel stack deploy: {exc}", file=sys.stderr)
        return 1
    return 0


def remove_stack(name: str, timeout: float) -> None:
    swarm.manager_check()
    swarm.docker("service", "rm", f"{name}_migrate")
    swarm.must("stack", "rm", name, what=f"docker stack rm {name}")
    deadline = time.monotonic() + timeout
    kinds = ("service", "secret", "config", "network")
    # Secrets, configs and the network can go once no service uses them.
    while leftovers := [obj for kind in kinds for obj in swarm.stack_objects(kind, name)]:
        for kind in kinds[1:]:
            for obj in swarm.stack_objects(kind, name):
                swarm.docker(kind, "rm", obj)
        if time.monotonic() > deadline:
            raise StackError(f"{name}: still there after {timeout:.0f} s: {', '.join(leftovers)}")
        time.sleep(1)


def run_rm(args: argparse.Namespace) -> int:
    name = f"keel-{args.env}"
    try:
        remove_stack(name, args.timeout)
    except StackError as exc:
        print(f"keel stack rm: {exc}", file=sys.stderr)
        return 1
    say(f"{name} removed (named volumes stay on their nodes: docker volume ls on each node)")
    return 0


def run_status(args: argparse.Namespace) -> int:
    name = f"keel-{args.env}"
    try:
        for service in swarm.service_names(name):
            print(converge.service_state(service).describe())
    except StackError as exc:
        print(f"keel stack status: {exc}", file=sys.stderr)
        return 1
    return 0
