"""Settings grouped by concern. Each module owns one section and the env names in it.

Every field is declared with ``msgspec.field(name="ENV_NAME")``: the encode name is the
setting's name in ``app.env``, in ``secrets/<env>.yaml`` and in the process environment.
Fields typed :class:`keel.config.types.SecretStr` are secrets (masked, redacted, prod-guarded).
"""
