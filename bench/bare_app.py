"""The baseline for bench_http: a bare Litestar app with one /health/live handler."""

from __future__ import annotations

from litestar import Litestar, get


@get("/health/live", sync_to_thread=False)
def live() -> dict[str, str]:
    return {"status": "ok"}


app = Litestar(route_handlers=[live], logging_config=None)
