"""The rules: creating users and API keys, logging in, refreshing, logging out.

Every failure a client can cause raises :class:`~keel.auth.errors.CredentialError` (401) or
:class:`~keel.auth.errors.ThrottledError` (429); controllers turn them into generic responses.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keel.auth.errors import CredentialError
from keel.auth.principal import parse_id
from keel.domain.users.models import ApiKey, User
from keel.domain.users.passwords import hash_password, needs_rehash, verify_password
from keel.domain.users.schemas import TokenPair

if TYPE_CHECKING:
    # Types only: the operator commands (`keel users …`) use this module and must not pay
    # for importing Litestar and the JWT stack.
    from litestar.stores.base import Store

    from keel.auth.crypto import SecretCipher
    from keel.auth.jwt import TokenClaims
    from keel.auth.runtime import AuthRuntime
    from keel.blocking_pool import BlockingPool

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
API_KEY_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
ADMIN_ROLE = "admin"


class IdSource(Protocol):
    def next_id(self) -> int: ...


class AlreadyExistsError(Exception):
    pass


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _insert_unique(session: AsyncSession, row: object, what: str) -> None:
    """Add ``row``; the unique constraint refusing it becomes :class:`AlreadyExistsError`."""
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise AlreadyExistsError(f"{what} already exists") from None


class UserService:
    def __init__(self, session: AsyncSession, ids: IdSource | None = None) -> None:
        self.session = session
        self.ids = ids

    async def create(self, username: str, password: str, roles: list[str]) -> User:
        if not USERNAME_PATTERN.fullmatch(username):
            raise ValueError(
                f"username {username!r}: 1-64 of letters, digits and . _ @ - "
                "(starting with a letter or digit)"
            )
        assert self.ids is not None, "creating rows needs an id source"
        now = _now()
        user = User(
            id=self.ids.next_id(),
            username=username,
            password_hash=hash_password(password),
            roles=sorted(set(roles)),
            is_active=True,
            created_at=now,
            updated_at=now,
        )
        await _insert_unique(self.session, user, f"user {username!r}")
        return user

    async def by_username(self, username: str) -> User | None:
        result = await self.session.execute(select(User).where(User.username == username))
        return result.scalar_one_or_none()

    async def get_active(self, user_id: int) -> User | None:
        user = await self.session.get(User, user_id)
        return user if user is not None and user.is_active else None

    async def authenticate(
        self, username: str, password: str, pool: BlockingPool | None = None
    ) -> User | None:
        """The active user with this password, or None (same work for every failure).

        With ``pool`` the hash runs in its threads (the API); without, inline (commands).
        """
        user = await self.by_username(username) if USERNAME_PATTERN.fullmatch(username) else None
        stored = user.password_hash if user else None
        if pool is not None:
            matches = await pool.run(verify_password, stored, password)
        else:
            matches = verify_password(stored, password)
        if not matches or user is None:
            return None
        if not user.is_active:
            return None
        if needs_rehash(user.password_hash):
            if pool is not None:
                user.password_hash = await pool.run(hash_password, password)
            else:
                user.password_hash = hash_password(password)
            user.updated_at = _now()
        return user


class ApiKeyService:
    def __init__(
        self,
        session: AsyncSession,
        cipher: SecretCipher | None = None,
        ids: IdSource | None = None,
    ) -> None:
        self.session = session
        self.cipher = cipher
        self.ids = ids

    async def create(self, name: str, roles: list[str]) -> tuple[ApiKey, str]:
        """A new key and its secret; the secret is shown once and never retrievable again."""
        if not API_KEY_NAME_PATTERN.fullmatch(name):
            raise ValueError(f"API key name {name!r}: 1-100 of letters, digits and . _ -")
        assert self.ids is not None, "creating rows needs an id source"
        assert self.cipher is not None, "creating keys needs the secret cipher"
        key_id = "kk_" + secrets.token_urlsafe(15)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(
            id=self.ids.next_id(),
            key_id=key_id,
            name=name,
            secret_ciphertext=self.cipher.encrypt(key_id, secret),
            roles=sorted(set(roles)),
            is_active=True,
            created_at=_now(),
        )
        await _insert_unique(self.session, key, f"API key {name!r}")
        return key, secret

    async def disable(self, name: str) -> ApiKey | None:
        """Stop a key from verifying (within the API's key cache time); None if no such key."""
        result = await self.session.execute(select(ApiKey).where(ApiKey.name == name))
        key = result.scalar_one_or_none()
        if key is not None:
            key.is_active = False
            await self.session.flush()
        return key

    async def find_active(self, key_id: str) -> ApiKey | None:
        result = await self.session.execute(
            select(ApiKey).where(ApiKey.key_id == key_id, ApiKey.is_active.is_(True))
        )
        return result.scalar_one_or_none()


class SessionService:
    """Login, refresh and logout on top of the JWT service and the stores."""

    def __init__(self, runtime: AuthRuntime, users: UserService) -> None:
        self.runtime = runtime
        self.users = users

    def _pair(self, user: User) -> TokenPair:
        jwt = self.runtime.jwt
        access = jwt.issue(str(user.id), "access", roles=user.roles, name=user.username)
        refresh = jwt.issue(str(user.id), "refresh")
        return TokenPair(
            access_token=access.token,
            token_type="bearer",  # noqa: S106 - the OAuth token type, not a secret
            expires_in=access.expires_in,
            refresh_token=refresh.token,
        )

    async def login(self, username: str, password: str, limits: Store, client: str) -> TokenPair:
        """The attempt is counted (or refused with 429) before the password is checked, in one
        atomic step, so concurrent guesses cannot slip past the limit (keel.auth.throttle)."""
        throttle = self.runtime.login_throttle
        account = username.lower()
        await throttle.admit(limits, account, client)
        user = await self.users.authenticate(username, password, self.runtime.password_pool)
        if user is None:
            raise CredentialError("wrong username or password, or user inactive")
        await throttle.succeeded(limits, account, client)
        return self._pair(user)

    async def refresh(self, token: str, revoked: Store) -> TokenPair:
        from keel.auth.atomic import add_if_absent

        claims = self.runtime.jwt.verify(token, "refresh")
        if await self.runtime.revocations.issued_before_reset(revoked, claims.issued_at):
            raise CredentialError("refresh token issued before the last restore")
        # One use per refresh token: the first caller marks it; a second use is refused.
        if not await add_if_absent(revoked, claims.jti, self._ttl(claims)):
            raise CredentialError("refresh token already used or revoked")
        user_id = parse_id(claims.subject)
        user = await self.users.get_active(user_id) if user_id is not None else None
        if user is None:
            raise CredentialError("user missing or inactive")
        return self._pair(user)

    async def logout(
        self, user_id: int, access_jti: str, access_exp: int, refresh: str | None, revoked: Store
    ) -> None:
        leeway = self.runtime.settings.jwt_leeway_seconds
        ttl = max(1, access_exp - int(time.time()) + leeway)
        await self.runtime.revocations.revoke(revoked, access_jti, ttl)
        if refresh is None:
            return
        claims = self.runtime.jwt.verify(refresh, "refresh")
        if claims.subject != str(user_id):
            raise CredentialError("refresh token of another user")
        await self.runtime.revocations.revoke(revoked, claims.jti, self._ttl(claims))

    def _ttl(self, claims: TokenClaims) -> int:
        """Remember a revoked token until it would have expired anyway (plus the leeway)."""
        leeway = self.runtime.settings.jwt_leeway_seconds
        return max(1, claims.expires_at - int(time.time()) + leeway)
