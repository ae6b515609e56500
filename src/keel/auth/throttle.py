"""Throttles for guesses: logins per account and client, signature failures per key and client.

Two limits each, so an attacker can slow a target but never lock it out:

- per (account, client): a hard limit. That client gets 429 until the window ends; nobody
  else is affected (the review locked any user out with five guesses from anywhere).
- per account: a soft limit. Past it, attempts are admitted one per backoff interval (1 s,
  2 s, 4 s ... up to ``backoff_max``), for every client; a distributed guesser gets a few
  guesses a minute, the owner waits at most ``backoff_max`` seconds.

Logins are counted *before* the password hash is checked, in one atomic Redis script that
checks both limits and takes the attempt, so concurrent guesses cannot all pass a check
made before any of them was counted. A successful login clears both counters.

Signature failures need no count before the check (an HMAC over a 256-bit secret cannot be
guessed); they are counted per (key id, client) after the check, and a valid signature is never
refused because of failures from *other* clients: knowing a key id no longer locks the service.
In memory (``APP_ENV=local``, one process) an asyncio lock gives the same atomicity.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass

import msgspec
from litestar.stores.base import Store

from keel.auth.atomic import add_if_absent, memory_lock
from keel.auth.errors import ThrottledError
from keel.stores import NamespacedRedisStore

# KEYS: pair counter, account hash {n, next}. ARGV: pair_limit, window_s, soft_limit,
# backoff_max_s, now_ms. Returns {admitted (0/1), retry_after_s}.
_ADMIT_SCRIPT = """
local pair = tonumber(redis.call('GET', KEYS[1]) or '0')
if pair >= tonumber(ARGV[1]) then
  return {0, math.max(1, redis.call('TTL', KEYS[1]))}
end
local n = tonumber(redis.call('HGET', KEYS[2], 'n') or '0')
local nxt = tonumber(redis.call('HGET', KEYS[2], 'next') or '0')
local now = tonumber(ARGV[5])
local soft = tonumber(ARGV[3])
if n >= soft and now < nxt then
  return {0, math.max(1, math.ceil((nxt - now) / 1000))}
end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
redis.call('HINCRBY', KEYS[2], 'n', 1)
if n >= soft then
  local delay = math.min(tonumber(ARGV[4]), 2 ^ (n - soft)) * 1000
  redis.call('HSET', KEYS[2], 'next', now + delay)
end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return {1, 0}
"""
# KEYS: pair counter, key counter, nonce. ARGV: nonce ttl_s, claim. Peeks both counters and
# remembers the nonce (retry-safe like keel.redis_conn.CLAIM_SCRIPT), in one round trip.
# Returns {pair failures, pair ttl, key failures, nonce added}.
_PEEK_AND_ADD_SCRIPT = """
local pair = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('TTL', KEYS[1])
local total = tonumber(redis.call('GET', KEYS[2]) or '0')
local prev = redis.call('GET', KEYS[3])
local added = 0
if not prev then redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[1]); added = 1
elseif prev == ARGV[2] then added = 1 end
return {pair, ttl, total, added}
"""
# KEYS: pair counter, key counter. ARGV: window_s. Returns {pair failures, key failures, ttl}.
_FAILED_SCRIPT = """
local pair = redis.call('INCR', KEYS[1])
if pair == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local total = redis.call('INCR', KEYS[2])
if total == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
return {pair, total, math.max(1, redis.call('TTL', KEYS[1]))}
"""


@dataclass(frozen=True, slots=True)
class Limits:
    per_client: int
    soft_total: int
    window_seconds: int
    backoff_max_seconds: int


class _Memo(msgspec.Struct):
    count: int = 0
    next_at: float = 0.0
    expires_at: float = 0.0


async def _read(store: Store, key: str, now: float) -> _Memo:
    raw = await store.get(key)
    memo = msgspec.json.decode(raw, type=_Memo) if raw is not None else _Memo()
    return memo if memo.expires_at > now else _Memo()


async def _write(store: Store, key: str, memo: _Memo, now: float) -> None:
    ttl = max(1, math.ceil(memo.expires_at - now))
    await store.set(key, msgspec.json.encode(memo), expires_in=ttl)


def _backoff(over: int, cap: int) -> float:
    return float(min(cap, 2**over))


class LoginThrottle:
    def __init__(self, limits: Limits, prefix: str = "login") -> None:
        self.limits = limits
        self.prefix = prefix

    def _keys(self, account: str, client: str) -> tuple[str, str]:
        return f"{self.prefix}-pair:{account}|{client}", f"{self.prefix}-acct:{account}"

    async def admit(self, store: Store, account: str, client: str) -> None:
        """Count this attempt, or raise :class:`ThrottledError` without counting it."""
        pair_key, account_key = self._keys(account, client)
        lim = self.limits
        if isinstance(store, NamespacedRedisStore):
            admitted, retry_after = await store.script(_ADMIT_SCRIPT)(
                keys=[store.full_key(pair_key), store.full_key(account_key)],
                args=[
                    lim.per_client,
                    lim.window_seconds,
                    lim.soft_total,
                    lim.backoff_max_seconds,
                    int(time.time() * 1000),
                ],
            )
            if not admitted:
                raise ThrottledError(int(retry_after))
            return
        async with memory_lock(store):
            now = time.time()
            pair = await _read(store, pair_key, now)
            if pair.count >= lim.per_client:
                raise ThrottledError(math.ceil(pair.expires_at - now))
            total = await _read(store, account_key, now)
            if total.count >= lim.soft_total and now < total.next_at:
                raise ThrottledError(math.ceil(total.next_at - now))
            if pair.count == 0:
                pair.expires_at = now + lim.window_seconds
            pair.count += 1
            if total.count >= lim.soft_total:
                over = total.count - lim.soft_total
                total.next_at = now + _backoff(over, lim.backoff_max_seconds)
            total.count += 1
            total.expires_at = now + lim.window_seconds
            await _write(store, pair_key, pair, now)
            await _write(store, account_key, total, now)

    async def succeeded(self, store: Store, account: str, client: str) -> None:
        pair_key, account_key = self._keys(account, client)
        await store.delete(pair_key)
        await store.delete(account_key)


class SignatureThrottle:
    """Failures per (key id, client): that client gets 429 past the limit, others do not."""

    def __init__(self, limits: Limits, prefix: str = "sig") -> None:
        self.limits = limits
        self.prefix = prefix

    def pair_key(self, key_id: str, client: str) -> str:
        return f"{self.prefix}-pair:{key_id}|{client}"

    def total_key(self, key_id: str) -> str:
        return f"{self.prefix}-key:{key_id}"

    async def peek_and_add(
        self,
        counters: Store,
        key_id: str,
        client: str,
        *,
        nonces: Store,
        nonce_key: str,
        ttl: int,
    ) -> bool:
        """Before a signature is accepted: refuse a client over its own limit, or one that has
        failed before while the key is over its soft total; remember the nonce (True if new).

        A client without failures is never refused here, whatever others did with the key id.
        """
        pair_key, total_key = self.pair_key(key_id, client), self.total_key(key_id)
        if (
            isinstance(counters, NamespacedRedisStore)
            and isinstance(nonces, NamespacedRedisStore)
            and counters.client is nonces.client
        ):
            pair, reset_in, total, added = await counters.script(_PEEK_AND_ADD_SCRIPT)(
                keys=[
                    counters.full_key(pair_key),
                    counters.full_key(total_key),
                    nonces.full_key(nonce_key),
                ],
                args=[ttl, secrets.token_hex(8)],
            )
            pair, reset_in, total = int(pair), max(1, int(reset_in)), int(total)
        else:
            now = time.time()
            pair_memo = await _read(counters, pair_key, now)
            pair, total = pair_memo.count, (await _read(counters, total_key, now)).count
            reset_in = max(1, math.ceil(pair_memo.expires_at - now))
            added = await add_if_absent(nonces, nonce_key, ttl)
        lim = self.limits
        if pair >= lim.per_client:
            raise ThrottledError(reset_in)
        if pair > 0 and total > lim.soft_total:
            raise ThrottledError(int(_backoff(total - lim.soft_total, lim.backoff_max_seconds)))
        return bool(added)

    async def failed(self, store: Store, key_id: str, client: str) -> None:
        """Count one failure; raises :class:`ThrottledError` when this client is over a limit
        (its own, or the key's soft total: then it waits a backoff before the next try)."""
        lim = self.limits
        pair_key, total_key = self.pair_key(key_id, client), self.total_key(key_id)
        if isinstance(store, NamespacedRedisStore):
            pair, total, ttl = await store.script(_FAILED_SCRIPT)(
                keys=[store.full_key(pair_key), store.full_key(total_key)],
                args=[lim.window_seconds],
            )
            pair, total, ttl = int(pair), int(total), int(ttl)
        else:
            async with memory_lock(store):
                now = time.time()
                counts = []
                for key in (pair_key, total_key):
                    memo = await _read(store, key, now)
                    if memo.count == 0:
                        memo.expires_at = now + lim.window_seconds
                    memo.count += 1
                    await _write(store, key, memo, now)
                    counts.append(memo)
                pair, total = counts[0].count, counts[1].count
                ttl = max(1, math.ceil(counts[0].expires_at - now))
        if pair > lim.per_client:
            raise ThrottledError(ttl)
        if total > lim.soft_total:
            raise ThrottledError(int(_backoff(total - lim.soft_total, lim.backoff_max_seconds)))
