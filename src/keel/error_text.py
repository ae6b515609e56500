"""Error bodies a person can act on, where Litestar's own wording does not say enough.

- 413: Litestar answers "Request Entity Too Large"; say the limit and the setting that sets it.
- An empty body where JSON is expected: Litestar's validation reports the bare ``KeyError`` text
  ``'data'``; say that the body is missing and what it should be.
"""

from __future__ import annotations

from typing import Any

from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE

EMPTY_BODY = "the request body is empty: send a JSON object (Content-Type: application/json)"


def too_large_detail(limit: int | None) -> str:
    size = f"{limit} bytes" if limit is not None else "the limit"
    return f"request body larger than {size} (HTTP_MAX_BODY_BYTES)"


def readable(status_code: int, detail: str, extra: Any, limit: int | None) -> tuple[str, Any]:
    """(detail, extra) for the client, with the two cases above reworded."""
    if status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        return too_large_detail(limit), extra
    if isinstance(extra, list):
        extra = [
            {**item, "message": EMPTY_BODY}
            if isinstance(item, dict)
            and item.get("source") == "body"
            and item.get("message") == "'data'"
            else item
            for item in extra
        ]
    return detail, extra
