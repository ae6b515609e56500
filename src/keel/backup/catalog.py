"""The backups in a folder: list, retention, and the age of the last good one.

Retention: a backup is deleted when it is not among the newest ``keep`` *and* older than
``max_age_days`` (when given): whichever rule keeps more wins, and the newest backup is never
deleted. Unfinished folders (``.<stamp>.partial``, left by a crash) go after a day.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from keel.backup.create import STAMP_FORMAT
from keel.backup.errors import BackupError
from keel.backup.manifest import MANIFEST_NAME, Manifest, read_manifest

_STAMP = re.compile(r"^\d{8}T\d{6}Z$")
_PARTIAL = re.compile(r"^\.(\d{8}T\d{6}Z)\.partial$")


@dataclass(frozen=True)
class Entry:
    folder: Path
    taken_at: dt.datetime
    manifest: Manifest | None  # None: the manifest is unreadable

    @property
    def size(self) -> int:
        return sum(p.size for p in self.manifest.parts) if self.manifest else 0


def _stamp_time(name: str) -> dt.datetime:
    return dt.datetime.strptime(name, STAMP_FORMAT).replace(tzinfo=dt.UTC)


def list_backups(directory: Path) -> list[Entry]:
    """Finished backups, oldest first."""
    if not directory.is_dir():
        return []
    entries = []
    for folder in directory.iterdir():
        if folder.is_dir() and _STAMP.match(folder.name) and (folder / MANIFEST_NAME).exists():
            try:
                manifest: Manifest | None = read_manifest(folder)
            except BackupError:
                manifest = None
            entries.append(Entry(folder, _stamp_time(folder.name), manifest))
    return sorted(entries, key=lambda e: e.taken_at)


def resolve(directory: Path, name: str) -> Path:
    """``latest``, a stamp under ``directory``, or a path to a backup folder."""
    if name == "latest":
        entries = [e for e in list_backups(directory) if e.manifest is not None]
        if not entries:
            raise BackupError(f"{directory}: no finished backup to restore")
        return entries[-1].folder
    path = Path(name)
    if not path.is_dir() and (directory / name).is_dir():
        path = directory / name
    if not path.is_dir():
        raise BackupError(f"{name}: no such backup folder (give a path, a stamp or 'latest')")
    return path


def prune(
    directory: Path,
    *,
    keep: int,
    max_age_days: float | None = None,
    now: dt.datetime | None = None,
) -> list[Path]:
    """Delete what the retention rule lets go; the deleted folders."""
    if keep < 1:
        raise BackupError("--keep must be at least 1 (the newest backup is never deleted)")
    now = now or dt.datetime.now(dt.UTC)
    entries = list_backups(directory)
    removed: list[Path] = []
    for index, entry in enumerate(entries):
        among_newest = index >= len(entries) - keep
        young = max_age_days is not None and now - entry.taken_at < dt.timedelta(max_age_days)
        if among_newest or young:
            continue
        shutil.rmtree(entry.folder)
        removed.append(entry.folder)
    for folder in directory.iterdir() if directory.is_dir() else ():
        match = _PARTIAL.match(folder.name)
        if match and now - _stamp_time(match.group(1)) > dt.timedelta(days=1):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@dataclass(frozen=True)
class Freshness:
    latest: Entry | None
    age_s: float | None

    def ok(self, max_age_hours: float) -> bool:
        return self.age_s is not None and self.age_s <= max_age_hours * 3600


def freshness(directory: Path, now: dt.datetime | None = None) -> Freshness:
    entries = [e for e in list_backups(directory) if e.manifest is not None]
    if not entries:
        return Freshness(None, None)
    latest = entries[-1]
    age = ((now or dt.datetime.now(dt.UTC)) - latest.taken_at).total_seconds()
    return Freshness(latest, age)


def prometheus_text(env: str, fresh: Freshness) -> str:
    """node_exporter textfile-collector metrics (the hook for the observability stack)."""
    label = f'{{env="{env}"}}'
    lines = [
        "# HELP keel_backup_last_success_timestamp_seconds When the newest finished backup was taken.",  # noqa: E501
        "# TYPE keel_backup_last_success_timestamp_seconds gauge",
    ]
    if fresh.latest is None:
        lines.append(f"keel_backup_last_success_timestamp_seconds{label} 0")
    else:
        lines += [
            f"keel_backup_last_success_timestamp_seconds{label} "
            f"{int(fresh.latest.taken_at.timestamp())}",
            "# HELP keel_backup_last_size_bytes Encrypted size of the newest finished backup.",
            "# TYPE keel_backup_last_size_bytes gauge",
            f"keel_backup_last_size_bytes{label} {fresh.latest.size}",
        ]
    return "\n".join(lines) + "\n"
