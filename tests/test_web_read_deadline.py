"""The read deadline bounds how long a request takes to arrive, never how long its answer
takes: a reply slower than ``request_read_timeout_s`` still reaches the client."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from bot.web.connections import ConnectionGuard, GuardedAppRunner


async def test_a_reply_slower_than_the_read_timeout_is_answered() -> None:
    async def slow(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(1.5)  # a model under load: longer than the read timeout below
        return web.json_response({"reply": "ok"})

    app = web.Application()
    app.router.add_post("/slow", slow)
    guard = ConnectionGuard(max_total=16, max_per_ip=4, read_timeout_s=0.5)
    runner = GuardedAppRunner(app, guard)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        async with asyncio.timeout(10), aiohttp.ClientSession() as session:
            for _ in range(2):  # and again on the same kept-alive connection
                async with session.post(
                    f"http://127.0.0.1:{port}/slow", json={"text": "where is my order?"}
                ) as response:
                    assert response.status == 200
                    assert await response.json() == {"reply": "ok"}
        assert guard.timed_out == 0
    finally:
        await runner.cleanup()
