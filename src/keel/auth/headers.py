"""Security headers on every response, 404s and errors raised in middleware included.

:class:`SecurityHeaders` is applied by the outermost ASGI layer (:mod:`keel.middleware`), which
sees every response the app sends; a route middleware would miss 404s and responses made by
Litestar's outer exception handler. API responses are JSON, so the policy is the strict one: no
sniffing, no framing, no referrer, nothing loadable (CSP ``default-src 'none'``). The OpenAPI
docs (only with DEBUG) need scripts, so the CSP is left off under the docs path. HSTS only when
``HTTP_BEHIND_TLS`` (a browser that saw HSTS on plain-HTTP localhost would be locked out of it).
"""

from __future__ import annotations

BASE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


class SecurityHeaders:
    """The policy above, as a :class:`keel.middleware.ResponseHeaders` for the outer layer."""

    def __init__(self, *, hsts: bool, docs_path: str = "/docs") -> None:
        self.docs_path = docs_path
        base = [*BASE_HEADERS, HSTS] if hsts else list(BASE_HEADERS)
        self._without_csp = base
        self._with_csp = [*base, CSP]

    def for_path(self, path: str) -> list[tuple[bytes, bytes]]:
        return self._without_csp if path.startswith(self.docs_path) else self._with_csp
