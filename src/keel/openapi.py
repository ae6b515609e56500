"""The OpenAPI document, made to tell the truth about what every route can answer.

Litestar documents the success response of each handler (and a generic 400); what the layers
around the handlers answer was missing: 401/403 from authentication and guards, 429 from the
throttles, 413 from the body limit, 503 when the database or Redis is down, 404 for an id that
is not the caller's. :func:`complete` adds them, with one ``Error`` body schema (the shape
``keel.app`` renders), declares the two security schemes (a bearer JWT, a signed request) per
route, and marks request bodies that refuse unknown fields with ``additionalProperties: false``.
schemathesis holds the document to the live app (tests/service/test_openapi_contract.py).
"""

from __future__ import annotations

import re

import msgspec
from litestar import Litestar
from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
    SecurityScheme,
)

ERROR_SCHEMA = "Error"
_ERROR_REF = Reference(ref=f"#/components/schemas/{ERROR_SCHEMA}")
_DESCRIPTIONS = {
    400: "Malformed request: body, parameters or headers (`detail` says which)",
    401: "No valid credentials (one generic message)",
    403: "Valid caller, not allowed",
    404: "No such resource for this caller",
    409: "The resource's state does not allow this",
    413: "Request body over HTTP_MAX_BODY_BYTES",
    422: "Well-formed but refused (`detail` names the field or conflict)",
    429: "Throttled; see Retry-After",
    503: "A dependency (database, Redis, broker) is unavailable; see Retry-After",
}
# Routes anyone may call (no credentials needed) and routes only a person's JWT may call.
_PUBLIC = re.compile(r"^/health/|^/api/auth/(login|refresh)$")
_BEARER_ONLY = re.compile(r"^/api/users/me$|^/api/auth/logout$")
# What particular operations answer on top of the rules below.
_EXTRA: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/api/jobs"): (422,),
    ("post", "/api/jobs/{job_id}/cancel"): (409,),
}
SECURITY_SCHEMES = {
    "bearer": SecurityScheme(
        type="http", scheme="bearer", bearer_format="JWT", description="POST /api/auth/login"
    ),
    "signature": SecurityScheme(
        type="apiKey",
        security_scheme_in="header",
        name="X-Keel-Signature",
        description="HMAC request signature with X-Keel-Key-Id, X-Keel-Timestamp, "
        "X-Keel-Nonce (docs/auth.md)",
    ),
}


def _error_schema() -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["status_code", "detail"],
        properties={
            "status_code": Schema(type=OpenAPIType.INTEGER),
            "detail": Schema(type=OpenAPIType.STRING),
            "extra": Schema(),
            "request_id": Schema(type=OpenAPIType.STRING),
        },
    )


def _codes(method: str, path: str, operation: Operation) -> set[int]:
    codes = {400}
    if path == "/health/ready":
        return {503}
    if path.startswith("/health/"):
        return set()
    codes |= {429, 503}  # throttles (signatures on every route, logins) and outages
    codes.add(401)  # bad credentials; on login and refresh the credentials are the body
    if not _PUBLIC.search(path):
        codes.add(403)
    if operation.request_body is not None:
        codes.add(413)
    if "{" in path:
        codes.add(404)
    if path == "/api/jobs" and method == "get":
        codes.add(403)  # all=true without the admin role
    codes.update(_EXTRA.get((method, path), ()))
    return codes


def _subclasses(cls: type) -> list[type]:
    found: list[type] = []
    subs: list[type] = cls.__subclasses__()
    for sub in subs:
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


def _strict_bodies(document: OpenAPI) -> None:
    """``additionalProperties: false`` for msgspec structs that forbid unknown fields
    (Litestar names a struct's component after the class)."""
    strict = {
        cls.__name__
        for cls in _subclasses(msgspec.Struct)
        if getattr(getattr(cls, "__struct_config__", None), "forbid_unknown_fields", False)
    }
    schemas = document.components.schemas if document.components else None
    for name, schema in (schemas or {}).items():
        if isinstance(schema, Schema) and name in strict:
            schema.additional_properties = False


def _job_kinds(document: OpenAPI) -> None:
    """``CreateJob.kind``: the registered kinds, not any string (anything else is a 422)."""
    from keel.domain.jobs.kinds import kinds

    schemas = document.components.schemas if document.components else None
    create = (schemas or {}).get("CreateJob")
    kind = (
        create.properties.get("kind") if isinstance(create, Schema) and create.properties else None
    )
    if isinstance(kind, Schema):
        kind.enum = sorted(kinds())


def complete(app: Litestar) -> OpenAPI:
    """Complete ``app``'s document in place (once) and return it."""
    document = app.openapi_schema
    if getattr(document, "_keel_completed", False):
        return document
    components = document.components or Components()
    document.components = components
    components.schemas = {**(components.schemas or {}), ERROR_SCHEMA: _error_schema()}
    components.security_schemes = {**(components.security_schemes or {}), **SECURITY_SCHEMES}
    for path, item in (document.paths or {}).items():
        for method in ("get", "post", "put", "patch", "delete"):
            operation: Operation | None = getattr(item, method, None)
            if operation is None:
                continue
            responses = operation.responses or {}
            for code in sorted(_codes(method, path, operation)):
                responses[str(code)] = OpenAPIResponse(
                    description=_DESCRIPTIONS[code],
                    content={"application/json": OpenAPIMediaType(schema=_ERROR_REF)},
                )
            operation.responses = responses
            if _PUBLIC.search(path):
                operation.security = []
            elif _BEARER_ONLY.search(path):
                operation.security = [{"bearer": []}]
            else:
                operation.security = [{"bearer": []}, {"signature": []}]
    _strict_bodies(document)
    _job_kinds(document)
    document._keel_completed = True  # type: ignore[attr-defined]
    return document
