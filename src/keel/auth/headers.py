"""Security headers on every response, 404s and errors raised in middleware included.

A ``before_send`` hook (installed by :class:`SecurityHeadersPlugin`) sees every response the
app sends; a route middleware would miss responses made by Litestar's outer exception handler.
API responses are JSON, so the policy is the strict one: no sniffing, no framing, no referrer,
nothing loadable (CSP ``default-src 'none'``). The OpenAPI docs (only with DEBUG) need scripts,
so the CSP is left off under the docs path. HSTS only when ``HTTP_BEHIND_TLS`` (a browser that
saw HSTS on plain-HTTP localhost would be locked out of it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.plugins import InitPluginProtocol

if TYPE_CHECKING:
    from litestar.config.app import AppConfig
    from litestar.types import Message, Scope

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


class SecurityHeadersPlugin(InitPluginProtocol):
    def __init__(self, *, hsts: bool, docs_path: str = "/docs") -> None:
        self.docs_path = docs_path
        base = [*BASE_HEADERS, HSTS] if hsts else list(BASE_HEADERS)
        self._without_csp = base
        self._with_csp = [*base, CSP]

    async def before_send(self, message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        docs = scope["path"].startswith(self.docs_path)
        extra = self._without_csp if docs else self._with_csp
        headers = list(message.get("headers", ()))
        present = {name.lower() for name, _ in headers}
        headers.extend(header for header in extra if header[0] not in present)
        message["headers"] = headers

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.before_send.append(self.before_send)
        return app_config
