"""A request on a connection accepted just before the drain is answered, not closed unanswered.

Found by bench/reload_resets.py (a new connection per request through SIGHUP reloads of `--workers 2`):
a retiring worker closed, as "idle", connections it had accepted whose request bytes had arrived but
were not read yet, so the client saw a reset or a disconnect (16 of 36,790 calls over 5 reloads).
"""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from host.config import HostConfig, ServerConfig
from host.connections import guarded_sites
from host.shutdown import finish_in_flight
from host.testing import free_port


async def test_a_request_already_sent_on_an_accepted_connection_is_answered() -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="answered")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    config = HostConfig(server=ServerConfig(rest_port=free_port(), mcp_port=free_port()))
    site = guarded_sites(config, {"rest": runner, "mcp": runner}, reuse_port=False, upstream_connections=0)[0]
    await site.start()
    loop = asyncio.get_running_loop()
    client = socket.socket()
    client.setblocking(False)
    try:
        await loop.sock_connect(client, ("127.0.0.1", config.server.rest_port))
        for _ in range(200):  # bounded: until the server has accepted it
            if site.guard.open:
                break
            await asyncio.sleep(0.005)
        assert site.guard.open
        # The request reaches the kernel's buffer; the loop has not read it when the drain begins.
        client.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await finish_in_flight([site], loop.time() + 5)
        answer = b""
        for _ in range(100):  # bounded: until the answer or the close
            try:
                chunk = await asyncio.wait_for(loop.sock_recv(client, 65536), 5)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
    finally:
        client.close()
        await runner.cleanup()
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"answered"), answer
