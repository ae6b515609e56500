"""The request class: every body that cannot be decoded is a 400 with a short reason.

Litestar maps msgspec's ``DecodeError`` to a 400, but two failures of the decoder escape as
other exceptions and became 500s with a traceback per request: invalid UTF-8 inside a JSON
string (``UnicodeDecodeError``) and nesting deeper than the decoder's stack
(``RecursionError``). Both are the client's bytes, never a server fault.

NUL characters (``\u0000`` in a JSON string, ``%00`` in a query) are refused here too:
PostgreSQL cannot store them in text or JSONB and answered every such request with an error
that became a 500 (schemathesis found it).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import ClientException


class BodyError(ClientException):
    """A 400 for a request body that is not usable JSON (the reason says why, briefly)."""


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


class SafeJsonRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            value = await super().json()
        except UnicodeDecodeError:
            raise BodyError(detail="malformed JSON body: invalid UTF-8") from None
        except RecursionError:
            raise BodyError(detail="malformed JSON body: nested too deeply") from None
        # The scan only runs when the escape is in the bytes at all (the common case: never).
        if b"\\u0000" in await self.body() and _has_nul(value):
            raise BodyError(detail="malformed JSON body: NUL characters are not accepted")
        return value


async def refuse_nul_in_query(request: Request[Any, Any, Any]) -> None:
    """App-wide ``before_request``: a query string with ``%00`` is a 400 before any handler."""
    query: bytes = request.scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        raise BodyError(detail="malformed query string: NUL characters are not accepted")
