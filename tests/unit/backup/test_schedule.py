"""The prod backup schedule: systemd units that parse, run `make backup ENV=prod`, and state
the interval docs/operations.md promises as the RPO."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
UNITS = REPO / "configs" / "prod" / "backup"


def test_units_run_make_backup_for_prod_every_six_hours() -> None:
    service = (UNITS / "keel-backup.service").read_text()
    timer = (UNITS / "keel-backup.timer").read_text()
    assert "ExecStart=/usr/bin/make backup ENV=${ENV}" in service
    assert "Environment=ENV=prod" in service
    assert "keel backup status" in service
    assert "--prom" in service
    assert "OnCalendar=*-*-* 00,06,12,18:15:00" in timer
    assert "Persistent=true" in timer
    operations = (REPO / "docs" / "operations.md").read_text()
    assert "RPO" in operations
    assert "every 6 hours" in operations


def test_make_backup_and_restore_expand_to_the_keel_commands() -> None:
    dry = subprocess.run(
        ["make", "-n", "backup", "restore", "ENV=prod", "FROM=20261201T000000Z", "REPLACE=1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "keel backup --env prod --stack compose --dir backups/prod --keep 28" in dry
    assert "keel restore 20261201T000000Z --env prod --stack compose" in dry
    assert "--replace" in dry


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_units_pass_systemd_analyze_verify() -> None:
    result = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            str(UNITS / "keel-backup.service"),
            str(UNITS / "keel-backup.timer"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
