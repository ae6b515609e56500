"""Request id and access log, as one raw ASGI middleware (no per-request allocations we can avoid).

``X-Request-ID`` from the client is honoured when it is a sane token, otherwise one is generated;
either way it is returned on the response, bound to every log line of the request, and put in the
access log line with method, path, status and duration.
"""

from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING

from keel import logging as keel_logging
from keel.logging import request_id_var

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
_VALID_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            return value.decode("ascii") if _VALID_ID.fullmatch(value) else None
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, access_log: bool) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        header_value = request_id.encode("ascii")
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((REQUEST_ID_HEADER, header_value))
                message["headers"] = headers
            await send(message)

        # A bare ContextVar (not logger.contextualize): same effect, a fraction of the cost.
        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            if self.access_log:
                duration_ms = round((time.perf_counter() - started) * 1000, 2)
                keel_logging.access_log(
                    request_id,
                    scope["method"],  # type: ignore[typeddict-item]
                    scope["path"],
                    status,
                    duration_ms,
                )
