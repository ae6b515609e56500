"""Retention, 'latest', and the last-backup-age check, on folders shaped like real backups."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from keel.backup.catalog import freshness, list_backups, prometheus_text, prune, resolve
from keel.backup.errors import BackupError
from keel.backup.manifest import FORMAT, Manifest, Part, write_manifest

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def make(directory: Path, hours_ago: float, size: int = 10) -> Path:
    taken = NOW - dt.timedelta(hours=hours_ago)
    folder = directory / taken.strftime("%Y%m%dT%H%M%SZ")
    folder.mkdir(parents=True)
    part = Part(
        kind="postgres",
        file="postgres.dump.age",
        format="pg_dump -Fc",
        size=size,
        sha256="0" * 64,
        plaintext_size=size,
    )
    write_manifest(
        folder,
        Manifest(
            format=FORMAT,
            created_at=taken.isoformat(),
            env="test",
            source="t",
            keel_version="0",
            alembic_head="0002_users",
            postgres_version="15",
            redis_version=None,
            recipients=[],
            parts=[part],
            duration_s=0.1,
        ),
    )
    return folder


def test_keep_n_keeps_the_newest(tmp_path: Path) -> None:
    folders = [make(tmp_path, h) for h in (30, 24, 18, 12, 6)]
    removed = prune(tmp_path, keep=2, now=NOW)
    assert removed == folders[:3]
    assert [e.folder for e in list_backups(tmp_path)] == folders[3:]


def test_max_age_keeps_everything_younger_and_never_the_newest(tmp_path: Path) -> None:
    folders = [make(tmp_path, h) for h in (24 * 9, 24 * 8, 24 * 2, 1)]
    assert prune(tmp_path, keep=1, max_age_days=7, now=NOW) == folders[:2]
    old_only = tmp_path / "old"
    lone = make(old_only, 24 * 30)
    assert prune(old_only, keep=1, max_age_days=7, now=NOW) == []
    assert lone.exists()


def test_unfinished_folders_are_not_backups_and_go_after_a_day(tmp_path: Path) -> None:
    make(tmp_path, 1)
    stale = tmp_path / ".20261129T000000Z.partial"
    fresh = tmp_path / ".20261201T115900Z.partial"
    stale.mkdir()
    fresh.mkdir()
    assert len(list_backups(tmp_path)) == 1
    assert prune(tmp_path, keep=5, now=NOW) == [stale]
    assert fresh.exists()


def test_keep_zero_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="--keep"):
        prune(tmp_path, keep=0)


def test_resolve_latest_stamp_and_path(tmp_path: Path) -> None:
    make(tmp_path, 5)
    newest = make(tmp_path, 1)
    assert resolve(tmp_path, "latest") == newest
    assert resolve(tmp_path, newest.name) == newest
    assert resolve(tmp_path, str(newest)) == newest
    with pytest.raises(BackupError, match="no such backup"):
        resolve(tmp_path, "20200101T000000Z")
    with pytest.raises(BackupError, match="no finished backup"):
        resolve(tmp_path / "empty", "latest")


def test_freshness_and_metrics(tmp_path: Path) -> None:
    assert not freshness(tmp_path, NOW).ok(7)
    assert 'keel_backup_last_success_timestamp_seconds{env="test"} 0' in prometheus_text(
        "test", freshness(tmp_path, NOW)
    )
    newest = make(tmp_path, 8, size=1234)
    fresh = freshness(tmp_path, NOW)
    assert fresh.latest is not None
    assert fresh.latest.folder == newest
    assert not fresh.ok(7)
    assert fresh.ok(9)
    text = prometheus_text("test", fresh)
    assert f"{int((NOW - dt.timedelta(hours=8)).timestamp())}" in text
    assert 'keel_backup_last_size_bytes{env="test"} 1234' in text
