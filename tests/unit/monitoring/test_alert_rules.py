"""The alert rules as Prometheus sees them: `promtool check rules` and `promtool test rules`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

MONITORING = Path(__file__).resolve().parents[3] / "configs" / "monitoring"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="needs promtool: apt-get install prometheus (.ci/run installs it)"
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=MONITORING, capture_output=True, text=True, timeout=120, check=False
    )


@needs_promtool
def test_rules_are_valid() -> None:
    done = _promtool("check", "rules", "rules.yml")
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_rule_unit_tests_pass() -> None:
    done = _promtool("test", "rules", "rules.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def _alerts() -> list[dict[str, object]]:
    rules = yaml.safe_load((MONITORING / "rules.yml").read_text())
    return [r for g in rules["groups"] for r in g["rules"] if "alert" in r]


def test_every_alert_has_a_firing_unit_test_and_a_runbook() -> None:
    tests = yaml.safe_load((MONITORING / "rules.test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    names = {str(a["alert"]) for a in _alerts()}
    assert names - fired == set(), "alerts no unit test fires"
    runbooks = {str(a["alert"]): a["annotations"].get("runbook") for a in _alerts()}  # type: ignore[union-attr]
    assert set(runbooks.values()) == {"docs/operations.md#alerts"}


def test_every_alert_is_explained_in_the_runbook() -> None:
    operations = (MONITORING.parents[1] / "docs" / "operations.md").read_text()
    missing = [str(a["alert"]) for a in _alerts() if f"`{a['alert']}`" not in operations]
    assert missing == [], "alerts without a 'what to do' entry in docs/operations.md"
