"""Set-if-absent on real Redis when the reply is lost: the client retries, and a fresh nonce or
refresh token must still count as new (a plain SET NX would call it a replay)."""

from __future__ import annotations

from litestar.stores.redis import RedisStore
from tests.service.conftest import make_settings
from tests.service.reply_dropper import ReplyDropper
from tests.service.servers import RedisServer

from keel.auth import atomic
from keel.redis_conn import make_client


async def test_lost_reply_on_first_use_is_not_a_replay(redis_server: RedisServer) -> None:
    settings = make_settings(redis_server.env())
    direct = RedisStore(redis=make_client(settings), namespace="atomic-retry")
    # Load the scripts on the server first, so the dropped reply is the one that ran the SET.
    assert await atomic.add_if_absent(direct, "warm-up", 30)
    await atomic.peek_and_add(direct, "warm-counter", direct, "warm-nonce", 30)

    for operation in ("add_if_absent", "peek_and_add"):
        dropper = ReplyDropper(redis_server.port)
        async with dropper.running() as port:
            proxied_settings = make_settings({**redis_server.env(), "REDIS_PORT": str(port)})
            proxied = RedisStore(redis=make_client(proxied_settings), namespace="atomic-retry")
            key = f"fresh-{operation}"
            if operation == "add_if_absent":
                added = await atomic.add_if_absent(proxied, key, 30)
            else:
                _, _, added = await atomic.peek_and_add(proxied, "counter", proxied, key, 30)
            await proxied._redis.aclose()
        assert dropper.dropped == 1, "the proxy did not cut a reply: the test proved nothing"
        assert added, f"{operation}: a retried first use was taken for a replay"
        # The key is really there: a second, separate use is a replay.
        assert not await atomic.add_if_absent(direct, key, 30)
    await direct._redis.aclose()
