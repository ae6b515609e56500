"""Errors: what clients see is always generic; the reason stays in the server log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.config.errors import ConfigError
from keel.metrics.hooks import auth_refused

if TYPE_CHECKING:
    # Imported where used: operator commands import these errors without loading Litestar.
    from litestar.exceptions import NotAuthorizedException, TooManyRequestsException

# The one message every authentication failure shows; never says which check failed.
CLIENT_DETAIL = "invalid or missing credentials"


class AuthConfigError(ConfigError):
    """Auth settings cannot be used (bad key, wrong key type). Names the setting, never a value.

    A :class:`~keel.config.ConfigError`, so whatever reports configuration problems (``keel``
    commands, the app factory's caller) reports this one the same way.
    """

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__([problem], header="auth settings refused")


class CredentialError(Exception):
    """A presented credential is not valid. ``reason`` is for logs only, never for the client."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ThrottledError(Exception):
    """Too many failures for one identity; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(f"throttled for {self.retry_after}s")


def unauthorized(scheme: str = "Bearer") -> NotAuthorizedException:
    from litestar.exceptions import NotAuthorizedException

    return NotAuthorizedException(detail=CLIENT_DETAIL, headers={"WWW-Authenticate": scheme})


def too_many(retry_after: int) -> TooManyRequestsException:
    from litestar.exceptions import TooManyRequestsException

    auth_refused("rate limited")
    return TooManyRequestsException(
        detail="too many requests", headers={"Retry-After": str(max(1, retry_after))}
    )
