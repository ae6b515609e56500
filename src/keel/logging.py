"""Logging with loguru: JSON or console lines, rotating files, stdlib interception, redaction.

Every record passes one patcher before any sink sees it. The patcher renders the final line
(message, extras, traceback) and removes every value registered with :func:`register_secret`,
so no sink, file or exception text can carry a secret. Tracebacks never include local variable
values (``diagnose=False``): those are where secrets hide.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import inspect
import logging
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TextIO

import msgspec
from loguru import logger

if TYPE_CHECKING:
    from loguru import Record

    from keel.config import Settings

REDACTED = "[REDACTED]"
# The current HTTP request's id; the patcher adds it to every record logged while it is set.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
# Loggers of libraries that log through stdlib logging; routed into loguru.
INTERCEPTED = (
    "granian",
    "_granian",
    "granian.access",
    "sqlalchemy",
    "alembic",
    "taskiq",
    "asyncio",
    "litestar",
)
_STANDARD_EXTRAS = frozenset({"_line", "_json", "_logger", "logger_name"})
# Present in every JSON line; left out of the console line to keep it short.
_CONSOLE_HIDDEN = frozenset(
    {"process", "pid", "lifecycle", "method", "path", "status", "duration_ms"}
)


class _Redactor:
    """Replaces registered secret values. Short values are skipped: they'd mangle normal text."""

    min_length = 4

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def register(self, values: Iterable[str]) -> None:
        with self._lock:
            before = len(self._values)
            self._values.update(v for v in values if v and len(v) >= self.min_length)
            if len(self._values) != before:
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None

    def __call__(self, text: str) -> str:
        pattern = self._pattern
        return pattern.sub(REDACTED, text) if pattern is not None and text else text


redact = _Redactor()


def register_secret(*values: str) -> None:
    """Make sure these values never appear in any log line from now on."""
    redact.register(values)


def _clean(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return redact(value)
    if kind is int or kind is float or kind is bool or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return redact(str(value))


def _exception_text(record: Record) -> str:
    exc = record["exception"]
    if exc is None or exc.type is None:
        return ""
    return "".join(traceback.format_exception(exc.type, exc.value, exc.traceback)).rstrip()


def _patch(record: Record) -> None:
    """Render the redacted JSON and console lines once, for every sink."""
    extra = record["extra"]
    request_id = request_id_var.get()
    if request_id is not None and "request_id" not in extra:
        extra["request_id"] = request_id
    message = redact(record["message"])
    record["message"] = message
    fields = {k: _clean(v) for k, v in extra.items() if k not in _STANDARD_EXTRAS}
    exc_text = redact(_exception_text(record))
    # The traceback is now part of our rendered text; loguru must not append the raw one.
    record["exception"] = None
    logger_name = extra.get("logger_name") or record["name"] or ""
    extra["_logger"] = logger_name
    document: dict[str, Any] = {
        "time": record["time"].astimezone(dt.UTC).isoformat(timespec="milliseconds"),
        "level": record["level"].name,
        "message": message,
        "logger": logger_name,
    }
    document.update(fields)
    if exc_text:
        document["exception"] = exc_text
    extra["_json"] = msgspec.json.encode(document).decode()
    suffix = " ".join(
        f"{k}={escape_controls(str(v))}" for k, v in fields.items() if k not in _CONSOLE_HIDDEN
    )
    line = f"{_console_text(message)} {suffix}" if suffix else _console_text(message)
    extra["_line"] = f"{line}\n{_console_text(exc_text, first=True)}" if exc_text else line


# C0/C1 controls (ESC starts terminal sequences), DEL and the Unicode line separators. JSON
# escapes them itself; a console line must not carry them raw, or a request path with %0a
# could write a line that looks like a record of its own.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTINUATION = "\n    | "


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """Every control character as a visible escape (``\\n``, ``\\x1b``, ...): one line."""
    return _CONTROL.sub(_escaped, text) if _CONTROL.search(text) else text


def _console_text(text: str, *, first: bool = False) -> str:
    """A message for the console: the lines it really has stay lines, but each continuation
    is indented and marked, so no text can start a line that passes for a new record."""
    if not _CONTROL.search(text):
        return text
    lines = [escape_controls(part) for part in text.split("\n")]
    joined = _CONTINUATION.join(lines)
    return f"    | {joined}" if first else joined


def _json_format(record: Record) -> str:
    return "{extra[_json]}\n"


_CONSOLE = (
    "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[_logger]}</cyan> {extra[_line]}\n"
)


def _console_format(record: Record) -> str:
    # A constant template: field values are substituted, never parsed as color markup.
    return _CONSOLE


class InterceptHandler(logging.Handler):
    """The loguru recipe: forward stdlib records, keeping the caller's depth and the logger name."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.bind(logger_name=record.name).opt(depth=depth, exception=record.exc_info).log(
            level, record.getMessage()
        )


def intercept_stdlib(level: int = logging.INFO) -> None:
    logging.basicConfig(handlers=[InterceptHandler()], level=level, force=True)
    for name in INTERCEPTED:
        stdlib_logger = logging.getLogger(name)
        stdlib_logger.handlers = []
        stdlib_logger.propagate = True


def use_json(fmt: str, stream: TextIO) -> bool:
    if fmt == "auto":
        return not stream.isatty()
    return fmt == "json"


def parse_rotation(rotation: str) -> str | dt.time:
    """``HH:MM`` means a daily rotation at that time in UTC (loguru alone would use local time)."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", rotation.strip())
    if match:
        return dt.time(int(match[1]), int(match[2]), tzinfo=dt.UTC)
    return rotation


def _is_lifecycle(record: Record) -> bool:
    extra = record["extra"]
    return "resource" in extra or bool(extra.get("lifecycle"))


class AccessLog:
    """One line per HTTP request. The hot path: in JSON mode without file sinks the line is
    encoded with msgspec (same shape as every other JSON line, redacted) and queued; the lines
    queued during one event-loop turn go out in one write at the end of that turn, so a busy
    process makes fewer write calls and an idle one still writes each line at once. Without an
    event loop a line is written immediately. Otherwise lines go through loguru.
    """

    def __init__(self, stream: TextIO | None, process: str) -> None:
        self._stream = stream
        self._common = {"logger": "keel.access", "process": process, "pid": os.getpid()}
        self._logger = logger.bind(logger_name="keel.access")
        self._pending: list[str] = []
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        self._second = -1
        self._second_text = ""

    def _timestamp(self) -> str:
        """``datetime.isoformat(timespec="milliseconds")`` in UTC, formatted once a second."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = dt.datetime.fromtimestamp(second, dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%S"
            )
        return f"{self._second_text}.{int((now - second) * 1000):03d}+00:00"

    def __call__(
        self, request_id: str, method: str, path: str, status: int, duration_ms: float
    ) -> None:
        path = redact(path)
        # The path is the client's text: one line, whatever it holds (%0a decodes to a newline).
        message = f"{escape_controls(method)} {escape_controls(path)} {status} {duration_ms}ms"
        if self._stream is None:
            self._logger.opt(capture=True).info(
                message.replace("{", "{{").replace("}", "}}"),
                request_id=request_id,
                method=method,
                path=path,
                status=status,
                duration_ms=duration_ms,
            )
            return
        document = {
            "time": self._timestamp(),
            "level": "INFO",
            "message": message,
            **self._common,
            "request_id": request_id,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
        }
        self._pending.append(msgspec.json.encode(document).decode())
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a direct call): write now
            self.flush()
            return
        # Keyed by loop: a flush queued on a loop that closed before running it must not keep
        # lines from another loop waiting.
        if self._flush_loop is not loop:
            self._flush_loop = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_loop = None
        if not self._pending or self._stream is None:
            return
        lines, self._pending = self._pending, []
        self._stream.write("\n".join(lines) + "\n")
        self._stream.flush()


# Set by configure_logging; the request middleware calls it.
access_log = AccessLog(None, "api")


@atexit.register
def flush_access_log() -> None:
    """Write queued access lines now (shutdown; the lifespan calls it too)."""
    access_log.flush()


def configure_logging(
    settings: Settings, *, process: str = "api", stream: TextIO | None = None
) -> None:
    """Configure loguru for this process. Idempotent: call again after a fork or in tests."""
    stream = stream or sys.stdout
    register_secret(*settings.secret_values)
    logger.remove()
    logger.configure(extra={"process": process, "pid": os.getpid()}, patcher=_patch)
    as_json = use_json(settings.log.format, stream)
    level = settings.log.level
    common: dict[str, Any] = {"level": level, "backtrace": False, "diagnose": False}
    logger.add(
        stream,
        format=_json_format if as_json else _console_format,
        colorize=not as_json and stream.isatty(),
        **common,
    )
    file_options: dict[str, Any] = {
        "rotation": parse_rotation(settings.log.rotation),
        "retention": settings.log.retention,
        "compression": settings.log.compression or None,
        "enqueue": True,
        "encoding": "utf-8",
    }
    if settings.log.file:
        path = settings.resolve_path(settings.log.file)
        path.parent.mkdir(parents=True, exist_ok=True)
        logger.add(path, format=_json_format, **file_options, **common)
    if settings.log.startup_file:
        path = settings.resolve_path(settings.log.startup_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        logger.add(path, format=_json_format, filter=_is_lifecycle, **file_options, **common)
    global access_log  # noqa: PLW0603 - process-wide, like loguru's own sinks
    fast = as_json and not settings.log.file and level in ("TRACE", "DEBUG", "INFO")
    access_log.flush()
    access_log = AccessLog(stream if fast else None, process)
    intercept_stdlib(logging.DEBUG if level in ("TRACE", "DEBUG") else logging.INFO)
    # SQLAlchemy's engine logger echoes statements at INFO; keep it at WARNING unless DB_ECHO.
    logging.getLogger("sqlalchemy.engine").setLevel(
        logging.INFO if settings.db.echo else logging.WARNING
    )


def granian_log_dictconfig() -> dict[str, Any]:
    """Granian's own loggers (main process and workers) routed to the intercept handler."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"intercept": {"()": "keel.logging.InterceptHandler"}},
        "loggers": {
            "_granian": {"handlers": ["intercept"], "level": "INFO", "propagate": False},
            "granian.access": {"handlers": ["intercept"], "level": "INFO", "propagate": False},
        },
    }
