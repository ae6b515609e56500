"""Modules depend downwards: a layering test over every import in src/keel (lazy and
TYPE_CHECKING imports included), so an upward import fails here, not in a review.

Layers, lowest first; a module may import its own layer and the ones below:

0. base: settings, secrets (a pure library), logging, Redis connection options, helpers
1. infra: database, Redis client, ids, stores, auth, heartbeats, GPU snapshots, the runtime,
   components, HTTP plumbing
2. domain: the business rules (jobs lifecycle, users), GET /api/gpus, the models registry
3. transport and schema history: Taskiq (broker, worker), Alembic migrations
4. entry points: the app factory, the CLI and its commands, operator verbs (backup, doctor)
5. test support (``keel_testing``, not shipped): nothing in keel imports it, except the one
   guarded hook that loads the fake NVML when GPU_FAKE_NVML asks for it
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from tests.support import REPO

SRC = REPO / "src"

# Longest matching prefix wins.
LAYERS: dict[str, int] = {
    "keel": 0,
    "keel.config": 0,
    "keel.secrets": 0,
    "keel.logging": 0,
    "keel.redis_conn": 0,
    "keel.batching": 0,
    "keel.resilience": 0,
    "keel.health_probe": 0,
    "keel.cli_parsers": 0,
    "keel.db": 1,
    "keel.redis_client": 1,
    "keel.ids": 1,
    "keel.lifecycle": 1,
    "keel.stores": 1,
    "keel.auth": 1,
    "keel.heartbeats": 1,
    "keel.gpu": 1,
    "keel.runtime": 1,
    "keel.components": 1,
    "keel.http_errors": 1,
    "keel.middleware": 1,
    "keel.health": 1,
    "keel.server": 1,
    "keel.domain": 2,
    "keel.gpu.routes": 2,
    "keel.models": 2,
    "keel.tasks": 3,
    "keel.db.migrations": 3,
    "keel.app": 4,
    "keel.cli": 4,
    "keel.commands": 4,
    "keel.gpu.commands": 4,
    # Operator verbs: backup/restore drive the database, Redis and the broker.
    "keel.backup": 4,
    "keel.doctor": 4,
    # Metrics: the counters (hooks, families) are called from every layer, so they sit at the
    # bottom; the component is infra; what reads the domain and the broker at scrape time
    # (state) and the exporter that starts it belong to the entry points.
    "keel.metrics": 0,
    "keel.metrics.component": 1,
    "keel.metrics.state": 4,
    "keel.metrics.exporter": 4,
    "keel.tasks.commands": 4,
    # Completes the app's OpenAPI document (it lists the registered job kinds): app-factory level.
    "keel.openapi": 4,
    "keel_testing": 5,
}
NAMES = {0: "base", 1: "infra", 2: "domain", 3: "transport", 4: "entry", 5: "test support"}
# (module, imported): the upward imports that are there on purpose.
ALLOWED = {("keel.gpu.snapshot", "keel_testing")}


def layer_of(module: str) -> int:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise AssertionError(f"{module}: no layer declared; add it to LAYERS")


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every keel import in the file, wherever it is."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
    ours = ("keel.", "keel_testing.")
    return [
        (line, name)
        for line, name in found
        if name in {"keel", "keel_testing"} or name.startswith(ours)
    ]


def violations(src: Path) -> list[str]:
    problems: list[str] = []
    for path in sorted(src.rglob("*.py")):
        module = module_name(path, src)
        own = layer_of(module)
        for line, imported in imports_of(path, module):
            if module.startswith("keel.secrets") and not imported.startswith("keel.secrets"):
                problems.append(
                    f"{path.relative_to(src)}:{line}: {module} imports {imported}: "
                    "keel.secrets is a pure library (no application imports)"
                )
                continue
            target = layer_of(imported)
            if target > own and (module, imported) not in ALLOWED:
                problems.append(
                    f"{path.relative_to(src)}:{line}: {module} ({NAMES[own]}) imports "
                    f"{imported} ({NAMES[target]}), a higher layer"
                )
    return problems


def test_no_module_imports_a_higher_layer() -> None:
    problems = violations(SRC)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("path", "source", "complaint"),
    [
        ("keel/domain/jobs/x.py", "from keel.tasks.broker import CONSUMER_GROUP\n", "transport"),
        ("keel/config/x.py", "def f():\n    from keel.commands import secrets_cmd\n", "entry"),
        ("keel/db/x.py", "from keel.domain.jobs import models\n", "domain"),
        ("keel/db/y.py", "from ..domain.users import models\n", "domain"),
        ("keel/secrets/x.py", "from keel.config import load\n", "pure library"),
        ("keel/gpu/x.py", "from keel_testing import fake_nvml\n", "test support"),
    ],
)
def test_the_check_catches_an_upward_import(
    tmp_path: Path, path: str, source: str, complaint: str
) -> None:
    module = tmp_path / path
    module.parent.mkdir(parents=True)
    module.write_text(source)
    problems = violations(tmp_path)
    assert len(problems) == 1
    assert complaint in problems[0]
