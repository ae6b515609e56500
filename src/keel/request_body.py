"""The request class: every body that cannot be decoded is a 400 with a short reason.

Litestar maps msgspec's ``DecodeError`` to a 400, but two failures of the decoder escape as
other exceptions and became 500s with a traceback per request: invalid UTF-8 inside a JSON
string (``UnicodeDecodeError``) and nesting deeper than the decoder's stack
(``RecursionError``). Both are the client's bytes, never a server fault.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import ClientException


class BodyError(ClientException):
    """A 400 for a request body that is not usable JSON (the reason says why, briefly)."""


class SafeJsonRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            return await super().json()
        except UnicodeDecodeError:
            raise BodyError(detail="malformed JSON body: invalid UTF-8") from None
        except RecursionError:
            raise BodyError(detail="malformed JSON body: nested too deeply") from None
