"""Request id, host check, access log and per-response headers: one raw ASGI layer around the
whole app.

``X-Request-ID`` from the client is honoured when it is a sane token, otherwise one is generated;
either way it is returned on the response, bound to every log line of the request, and put in the
access log line with method, path, status and duration. Components add response headers
(security headers) through :class:`ResponseHeaders` policies applied in the same ``send``
wrapper.

:func:`install` wraps Litestar's own ASGI handler, outside its router, exception handling and
CORS: a 404, a 405, a CORS preflight or an error Litestar turned into a 500 gets its id, its
headers and its access line too, which a Litestar middleware (run per route) would miss. One
layer instead of a middleware plus ``before_send`` hooks is also the cheapest per request: it
reads the request headers once, for the request id, the Host (``ALLOWED_HOSTS``,
:mod:`keel.host_check`; a refused host gets 400 here) and whether an Origin is present (without
one, Litestar's CORS layer is skipped: it would only pass the request on).
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from keel import logging as keel_logging
from keel.host_check import REFUSED_BODY, HostCheck
from keel.logging import request_id_var

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
_VALID_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")

# Generated ids: a random per-process prefix and a counter, 32 hex characters like a UUID.
# Unique without a getrandom() call per request (that call releases the GIL, which under
# Granian costs a thread hand-off); an id needs to be unique, not unguessable.
_id_prefix = ""
_id_counter = itertools.count()


def _reseed_request_ids() -> None:
    global _id_prefix, _id_counter  # noqa: PLW0603 - per process; a forked worker reseeds
    _id_prefix = os.urandom(8).hex()
    _id_counter = itertools.count(int.from_bytes(os.urandom(4), "big"))


_reseed_request_ids()
os.register_at_fork(after_in_child=_reseed_request_ids)


def _new_request_id() -> str:
    return f"{_id_prefix}{next(_id_counter) & 0xFFFFFFFFFFFFFFFF:016x}"


def _read_headers(scope: Scope) -> tuple[str | None, bytes | None, bool]:
    """One pass over the request headers: (a sane client request id, Host, Origin present)."""
    request_id: str | None = None
    host: bytes | None = None
    origin = False
    seen_id = False
    # The first of a repeated header counts, as Litestar's headers.get() reads it.
    for name, value in scope["headers"]:
        if name == b"host":
            host = value if host is None else host
        elif name == REQUEST_ID_HEADER and not seen_id:
            seen_id = True
            request_id = value.decode("ascii") if _VALID_ID.fullmatch(value) else None
        elif name == b"origin":
            origin = True
    return request_id, host, origin


class ResponseHeaders(Protocol):
    """Headers a component adds to every HTTP response (names in lower case, as bytes).

    A header the response already carries is left as the handler set it.
    """

    def for_path(self, path: str) -> Sequence[tuple[bytes, bytes]]: ...


class ResponseObserver(Protocol):
    """Told about every HTTP request here (metrics): its start, then its status and duration.

    ``scope["path_template"]`` holds the matched route's template once Litestar routed it.
    """

    def begin(self) -> None: ...

    def end(self, scope: Scope, status: int, seconds: float) -> None: ...


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        access_log: bool,
        response_headers: Sequence[ResponseHeaders] = (),
        observers: Sequence[ResponseObserver] = (),
        host_check: HostCheck | None = None,
        without_cors: ASGIApp | None = None,
    ) -> None:
        self.app = app
        # Litestar's CORS layer only passes through a request without Origin, after parsing
        # every header to find out: such requests skip it (``without_cors`` is what it wraps).
        self.without_cors = without_cors or app
        self.host_check = host_check
        self.access_log = access_log
        self.response_headers = list(response_headers)
        self.observers = list(observers)

    def _extra_headers(self, path: str) -> list[tuple[bytes, bytes]]:
        return [h for policy in self.response_headers for h in policy.for_path(path)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await self.app(scope, receive, send)
            return
        incoming_id, host, origin = _read_headers(scope)
        request_id = incoming_id or _new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        header_value = request_id.encode("ascii")
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                if self.response_headers:
                    extra = self._extra_headers(scope["path"])
                    extra_names = {name for name, _ in extra}
                    # Usually no response sets one of these itself: then nothing is filtered.
                    if any(name.lower() in extra_names for name, _ in headers):
                        present = {name.lower() for name, _ in headers}
                        extra = [h for h in extra if h[0] not in present]
                    headers += extra
                headers.append((REQUEST_ID_HEADER, header_value))
                message["headers"] = headers
            await send(message)

        # A bare ContextVar (not logger.contextualize): same effect, a fraction of the cost.
        token = request_id_var.set(request_id)
        for observer in self.observers:
            observer.begin()
        try:
            if self.host_check is not None and not self.host_check.allows(host, scope["path"]):
                await _refuse_host(send_with_id)
            else:
                await (self.app if origin else self.without_cors)(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            if self.observers:
                elapsed = time.perf_counter() - started
                for observer in self.observers:
                    observer.end(scope, status, elapsed)
            if self.access_log:
                duration_ms = round((time.perf_counter() - started) * 1000, 2)
                keel_logging.access_log(
                    request_id,
                    scope["method"],  # type: ignore[typeddict-item]
                    scope["path"],
                    status,
                    duration_ms,
                )


async def _refuse_host(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(REFUSED_BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": REFUSED_BODY, "more_body": False})


def install(
    app: Litestar,
    *,
    access_log: bool,
    response_headers: Sequence[ResponseHeaders] = (),
    observers: Sequence[ResponseObserver] = (),
    allowed_hosts: Sequence[str] = ("*",),
) -> Litestar:
    """Put :class:`RequestContextMiddleware` around all of ``app`` (see the module docstring).

    ``asgi_handler`` is what ``Litestar.__call__`` runs for every HTTP and websocket scope
    (lifespan events go elsewhere); tests/unit/core/test_app.py checks a 404 still passes here.
    With ``cors_config`` Litestar makes it its CORS layer around the rest (``.app``).
    """
    handler = app.asgi_handler
    inner = getattr(handler, "app", None)
    without_cors = inner if app.cors_config and type(handler).__name__ == "CORSMiddleware" else None
    app.asgi_handler = RequestContextMiddleware(
        handler,
        access_log=access_log,
        response_headers=response_headers,
        observers=observers,
        host_check=HostCheck.from_setting(allowed_hosts),
        without_cors=without_cors,
    )
    return app
