"""Logging (loguru): format, level and the optional rotating file sinks."""

from __future__ import annotations

from typing import Literal

import msgspec


class LogSettings(msgspec.Struct, frozen=True, kw_only=True):
    level: Literal["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"] = msgspec.field(
        default="INFO", name="LOG_LEVEL"
    )
    # auto: JSON when stdout is not a terminal (containers, CI), pretty console otherwise.
    format: Literal["auto", "json", "console"] = msgspec.field(default="auto", name="LOG_FORMAT")
    file: str = msgspec.field(default="", name="LOG_FILE")
    startup_file: str = msgspec.field(default="", name="LOG_STARTUP_FILE")
    # loguru syntax: a size ("100 MB") or a time ("00:00", "1 day"); times are UTC.
    rotation: str = msgspec.field(default="100 MB", name="LOG_ROTATION")
    retention: str = msgspec.field(default="14 days", name="LOG_RETENTION")
    compression: str = msgspec.field(default="gz", name="LOG_COMPRESSION")
