"""Set-if-absent on real Redis when the reply is lost: the client retries, and a fresh nonce or
refresh token must still count as new (a plain SET NX would call it a replay)."""

from __future__ import annotations

from tests.service.conftest import make_settings
from tests.service.reply_dropper import ReplyDropper
from tests.service.servers import RedisServer

from keel.auth import atomic
from keel.redis_conn import make_client
from keel.stores import NamespacedRedisStore, build_store_registry


async def test_lost_reply_on_first_use_is_not_a_replay(redis_server: RedisServer) -> None:
    settings = make_settings(redis_server.env())
    direct = NamespacedRedisStore(make_client(settings), "atomic-retry")
    # Load the scripts on the server first, so the dropped reply is the one that ran the SET.
    assert await atomic.add_if_absent(direct, "warm-up", 30)
    await atomic.peek_and_add(direct, "warm-counter", direct, "warm-nonce", 30)

    for operation in ("add_if_absent", "peek_and_add"):
        dropper = ReplyDropper(redis_server.port)
        async with dropper.running() as port:
            proxied_settings = make_settings({**redis_server.env(), "REDIS_PORT": str(port)})
            proxied = NamespacedRedisStore(make_client(proxied_settings), "atomic-retry")
            key = f"fresh-{operation}"
            if operation == "add_if_absent":
                added = await atomic.add_if_absent(proxied, key, 30)
            else:
                _, _, added = await atomic.peek_and_add(proxied, "counter", proxied, key, 30)
            await proxied.client.aclose()
        assert dropper.dropped == 1, "the proxy did not cut a reply: the test proved nothing"
        assert added, f"{operation}: a retried first use was taken for a replay"
        # The key is really there: a second, separate use is a replay.
        assert not await atomic.add_if_absent(direct, key, 30)
    await direct.client.aclose()


async def test_store_key_naming_matches_litestar(redis_server: RedisServer) -> None:
    """keel.auth.atomic writes the keys Litestar's RedisStore reads (``<namespace>:<key>``):
    a Litestar upgrade that names keys differently must fail here, not in production."""
    client = make_client(make_settings(redis_server.env()))
    try:
        store = build_store_registry("keel-naming", client).get("nonces")
        assert isinstance(store, NamespacedRedisStore)
        await store.set("through-litestar", b"v", expires_in=30)
        assert await client.get(store.full_key("through-litestar")) == b"v"
        assert await atomic.add_if_absent(store, "through-keel", 30)
        assert await store.exists("through-keel")  # Litestar finds what the script wrote
        assert await atomic.increment(store, "counter", 30) == (1, 30)
        assert await store.get("counter") == b"1"
    finally:
        await client.aclose()
