"""Node-id leases on real Redis when a reply is lost: the retried claim keeps the id it took."""

from __future__ import annotations

from keel.ids import NodeLease
from keel.redis_conn import make_client
from tests.service.conftest import make_settings
from tests.service.reply_dropper import ReplyDropper
from tests.service.servers import RedisServer


async def test_claim_after_a_lost_reply_keeps_its_id_and_orphans_none(
    redis_server: RedisServer,
) -> None:
    direct = make_client(make_settings(redis_server.env()))
    prefix = "lease-retry"
    dropper = ReplyDropper(redis_server.port)
    async with dropper.running() as port:
        proxied = make_client(make_settings({**redis_server.env(), "REDIS_PORT": str(port)}))
        lease = NodeLease(proxied, prefix, ttl=30)
        node_id = await lease.claim()
        await proxied.aclose()
    assert dropper.dropped == 1, "the proxy did not cut a reply: the test proved nothing"
    keys = [key async for key in direct.scan_iter(match=f"{prefix}:ids:node:*")]
    # One key, ours: a claim that gave up on its own lease would leave it held by nobody.
    assert keys == [f"{prefix}:ids:node:{node_id}".encode()]
    assert await direct.get(keys[0]) == lease.token.encode()
    await direct.delete(*keys)
    await direct.aclose()
