"""The one error type of backup and restore: ``str()`` is one line saying what to do."""

from __future__ import annotations


class BackupError(Exception):
    """A backup or restore step refused or failed; nothing was changed unless it says so."""


class VerifyError(BackupError):
    """The backup cannot be trusted (missing part, checksum, key, archive); nothing touched."""


class TargetError(BackupError):
    """The restore target is not fit (not empty, unreachable); nothing was changed."""
