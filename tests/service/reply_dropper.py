"""A Redis proxy that loses one reply: how a connection dropped mid-command looks to a client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class ReplyDropper:
    """A TCP proxy to Redis that cuts the connection instead of delivering the reply to the
    first write it sees (EVAL/EVALSHA of a script, or a SET ... NX): the command has run on
    the server, the client never hears of it."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.armed = True
        self.dropped = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        while data := await reader.read(65536):
            up_writer.write(data)
            await up_writer.drain()
            reply = await up_reader.read(65536)
            if self.armed and (b"EVAL" in data.upper() or b"\r\nNX\r\n" in data.upper()):
                self.armed = False
                self.dropped += 1
                break
            writer.write(reply)
            await writer.drain()
        up_writer.close()
        writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[int]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        try:
            yield server.sockets[0].getsockname()[1]
        finally:
            server.close()
