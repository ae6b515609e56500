"""The terminal view of a snapshot: a table of GPUs, then their processes (plain text)."""

from __future__ import annotations

from collections.abc import Sequence

from keel.gpu.model import Gpu, GpuSnapshot
from keel.gpu.snapshot import NO_GPU_MESSAGE

NA = "-"


def render(snap: GpuSnapshot) -> str:
    header = _header(snap)
    if not snap.available:
        return f"{header}\n{NO_GPU_MESSAGE}: {snap.reason}"
    lines = [
        header,
        "",
        _table(["GPU", "NAME", "TEMP", "FAN", "UTIL", "POWER", "MEMORY"], _rows(snap.gpus)),
    ]
    processes = [
        [str(gpu.index), str(p.pid), p.user or "?", _mib(p.gpu_memory_mib), p.command or "?"]
        for gpu in snap.gpus
        for p in gpu.processes or []
    ]
    lines.append("")
    if processes:
        lines.append(_table(["GPU", "PID", "USER", "GPU MEM", "COMMAND"], processes))
    elif any(gpu.processes is not None for gpu in snap.gpus):
        lines.append("no processes on the GPUs")
    unlisted = [str(gpu.index) for gpu in snap.gpus if gpu.ok and gpu.processes is None]
    if unlisted:
        lines.append(f"the driver cannot list processes on GPU {', '.join(unlisted)}")
    return "\n".join(lines)


def _header(snap: GpuSnapshot) -> str:
    parts = [
        f"host {snap.hostname}",
        f"driver {snap.driver_version or NA}",
        f"CUDA {snap.cuda_version or NA}",
        snap.taken_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
    ]
    if snap.source != "nvml":
        parts.append(f"[{snap.source}]")
    return "   ".join(parts)


def _rows(gpus: Sequence[Gpu]) -> list[list[str]]:
    rows = []
    for gpu in gpus:
        if not gpu.ok:
            rows.append([str(gpu.index), f"FAILED: {gpu.error}", "", "", "", "", ""])
            continue
        rows.append(
            [
                str(gpu.index),
                gpu.name or "?",
                _unit(gpu.temperature_c, "C"),
                _unit(gpu.fan_percent, "%"),
                _unit(gpu.utilization_percent, "%"),
                f"{_unit(gpu.power_draw_w, '')} / {_unit(gpu.power_limit_w, ' W')}",
                f"{_unit(gpu.memory_used_mib, '')} / {_mib(gpu.memory_total_mib)}",
            ]
        )
    return rows


def _unit(value: int | None, unit: str) -> str:
    return NA if value is None else f"{value}{unit}"


def _mib(value: int | None) -> str:
    return _unit(value, " MiB")


def _table(headings: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [headings, *rows]) for i in range(len(headings))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headings, *rows]
    )
