"""Authentication: JWT bearer tokens (people) and HMAC request signatures (services).

- :mod:`keel.auth.keys` - the JWT key ring, with key-type/algorithm-family checks.
- :mod:`keel.auth.jwt` - issue and verify tokens (python-jose, pinned algorithms).
- :mod:`keel.auth.signatures` - canonical request string, sign, verify.
- :mod:`keel.auth.atomic` - set-if-absent and counters on Litestar stores (nonces, limits).
- :mod:`keel.auth.middleware` - the Litestar authentication middleware (either scheme).
- :mod:`keel.auth.guards` - ``require_authenticated`` / ``require_role`` for route handlers.
- :mod:`keel.auth.headers` - security headers; :mod:`keel.auth.ratelimit` - 429 with Retry-After.
"""
