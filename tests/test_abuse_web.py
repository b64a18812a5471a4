"""Floods against the web server (issue 18, abuse): half-sent requests, connection
floods, malformed HTTP, and conversations and flags from rotating addresses.

Each test runs the real application behind the real guarded runner on a free loopback
port (``bot.web.connections``), talks to it with raw sockets where a browser could not
misbehave enough, and stays bounded in connections and seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.app import create_app
from bot.core.types import FlagReason
from bot.store.conversations import ConversationDatabase
from bot.web import WebConfig, health
from bot.web.connections import (
    ConnectionGuard,
    GuardedAppRunner,
    start_health_listener,
    start_site,
)
from bot.web.flood import CURRENT_CLIENT, FlagBudget
from tests.support.web import knowledge, make_settings


@dataclass
class Server:
    base: str
    host: str
    port: int
    guard: ConnectionGuard
    database: Path
    app: web.Application

    def flags(self) -> list[tuple[str, str]]:
        with sqlite3.connect(self.database) as conn:
            return conn.execute(
                "SELECT conversation_id, reason FROM bot_flags WHERE status = 'open'"
            ).fetchall()


ServerFactory = Callable[..., Awaitable[Server]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[ServerFactory]:
    """Start the application behind the guarded runner, with these ``web`` settings."""
    runners: list[web.AppRunner] = []
    stores: list[ConversationDatabase] = []

    async def start(**web_fields: Any) -> Server:
        fields: dict[str, Any] = {"rate_per_minute": 100_000, "rate_burst": 100_000}
        config = WebConfig(**(fields | web_fields))
        database = tmp_path / f"conversations-{len(stores)}.db"
        store = ConversationDatabase(database)
        await store.open()
        stores.append(store)
        app = create_app(
            make_settings(tmp_path / "home", config), retriever=knowledge(), store=store
        )
        guard = ConnectionGuard.from_config(config)
        runner = GuardedAppRunner(app, guard)
        await runner.setup()
        runners.append(runner)
        await start_site(runner, "127.0.0.1", 0)
        port = runner.addresses[0][1]
        return Server(f"http://127.0.0.1:{port}", "127.0.0.1", port, guard, database, app)

    yield start
    for runner in runners:
        await runner.cleanup()
    for store in stores:
        await store.aclose()


async def read_until_closed(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Everything the server sends until it closes (a reset reads as the end)."""
    chunks = []
    try:
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


async def healthz(base: str, *, local_addr: str | None = None) -> int:
    connector = aiohttp.TCPConnector(local_addr=(local_addr, 0) if local_addr else None)
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
        session.get(f"{base}/healthz") as response,
    ):
        return response.status


# -- half-sent requests ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "head, trickle",
    [
        # Headers that never end, one byte at a time.
        (b"POST /api/conversations HTTP/1.1\r\nHost: x\r\n", b"X"),
        # Complete headers, then a body that never reaches its declared length.
        (b"POST /api/conversations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", b" "),
    ],
    ids=["headers", "body"],
)
async def test_a_trickling_request_is_closed_after_the_read_timeout(
    serve: ServerFactory, head: bytes, trickle: bytes
) -> None:
    server = await serve(request_read_timeout_s=1.0)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    started = time.monotonic()
    writer.write(head)

    async def keep_trickling() -> None:
        for _ in range(40):  # at most 8 s, and the server should close long before
            await asyncio.sleep(0.2)
            writer.write(trickle)
            await writer.drain()

    trickler = asyncio.create_task(keep_trickling())
    answer = await read_until_closed(reader, timeout=6)
    held = time.monotonic() - started
    trickler.cancel()
    writer.close()

    assert 0.9 <= held < 3.0, f"held {held:.1f}s for a 1s read timeout"
    if trickle == b"X":  # still in the headers: the client is told why
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 408")
        body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
        assert body["error"] == "request_timeout"
    assert server.guard.timed_out == 1
    assert await healthz(server.base) == 200


async def test_a_keep_alive_client_is_not_cut_between_prompt_requests(
    serve: ServerFactory,
) -> None:
    server = await serve(request_read_timeout_s=0.5)
    async with aiohttp.ClientSession() as session:
        for _ in range(3):  # one connection; idle for longer than the read timeout between
            async with session.get(f"{server.base}/healthz") as response:
                assert response.status == 200
            await asyncio.sleep(0.8)
        async with session.post(f"{server.base}/api/conversations", json={}) as response:
            assert response.status == 201
    assert server.guard.timed_out == 0


# -- connection caps -------------------------------------------------------------------------
async def test_connections_beyond_the_per_address_cap_are_closed_at_once(
    serve: ServerFactory,
) -> None:
    server = await serve(max_connections_per_ip=5)
    held = [await asyncio.open_connection(server.host, server.port) for _ in range(5)]
    await asyncio.sleep(0.1)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    started = time.monotonic()
    assert await read_until_closed(reader, timeout=3) == b""  # no answer, just closed
    assert time.monotonic() - started < 1.0
    writer.close()
    # Another address is served meanwhile (all of 127.0.0.0/8 is loopback).
    assert await healthz(server.base, local_addr="127.0.0.2") == 200
    for _, w in held:
        w.close()
    await asyncio.sleep(0.2)
    assert await healthz(server.base) == 200
    assert server.guard.refused >= 1


async def test_a_burst_of_connections_waits_in_the_kernel_queue_not_in_a_syn_retry(
    serve: ServerFactory,
) -> None:
    server = await serve(request_read_timeout_s=30, max_connections_per_ip=1000)
    # The event loop is busy (this synchronous block) while 200 clients connect: the
    # kernel's queue, not the small per-iteration accept batch, must hold them all.
    clients = []
    started = time.monotonic()
    try:
        for _ in range(200):
            clients.append(socket.create_connection((server.host, server.port), timeout=0.5))
        connected_in = time.monotonic() - started
        await asyncio.sleep(0)
        for _ in range(50):  # then the loop takes them, a batch per iteration
            if server.guard.open == 200:
                break
            await asyncio.sleep(0.02)
        assert server.guard.open == 200
        assert connected_in < 0.5, f"{connected_in:.2f}s: some connections waited for a retry"
        assert await healthz(server.base) == 200
    finally:
        for client in clients:
            client.close()


async def test_the_health_listener_answers_while_the_main_port_refuses_the_prober(
    serve: ServerFactory,
) -> None:
    server = await serve(max_connections_per_ip=4, request_read_timeout_s=30)
    runner = await start_health_listener(server.app, "127.0.0.1", 0, read_timeout_s=30)
    try:
        health_base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        # The prober's own address has every main-port slot taken by half-sent requests.
        held = [await asyncio.open_connection(server.host, server.port) for _ in range(4)]
        for _, writer in held:
            writer.write(b"POST /api/conversations HTTP/1.1\r\nHost: x\r\n")
        await asyncio.sleep(0.1)
        with pytest.raises(aiohttp.ClientError):
            await healthz(server.base)

        started = time.monotonic()
        assert await healthz(health_base) == 200
        assert time.monotonic() - started < 1.0
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(f"{health_base}/metrics") as response:
                assert response.status == 200
                assert "supportbot_" in await response.text()
            # Nothing but health checks and metrics: the API stays on the main port.
            async with session.post(f"{health_base}/api/conversations", json={}) as response:
                assert response.status == 404
            async with session.get(f"{health_base}/ops/login") as response:
                assert response.status == 404
        for _, writer in held:
            writer.close()
    finally:
        await runner.cleanup()


async def test_a_flood_of_the_health_listener_is_capped_and_leaves_the_main_port_alone(
    serve: ServerFactory,
) -> None:
    server = await serve()
    runner = await start_health_listener(server.app, "127.0.0.1", 0, read_timeout_s=30)
    try:
        port = runner.addresses[0][1]
        held = [
            await asyncio.open_connection("127.0.0.1", port)
            for _ in range(health.MAX_CONNECTIONS_PER_IP + 4)
        ]
        await asyncio.sleep(0.1)
        # The extra four were closed at once; the rest hold no more than the cap.
        closed = 0
        for reader, _ in held:
            with contextlib.suppress(TimeoutError):
                closed += await read_until_closed(reader, timeout=0.2) == b"" and reader.at_eof()
        assert closed == 4
        # Another address still gets through, and the main port never noticed.
        assert await healthz(f"http://127.0.0.1:{port}", local_addr="127.0.0.2") == 200
        assert await healthz(server.base) == 200
        assert server.guard.open <= 1
        for _, writer in held:
            writer.close()
    finally:
        await runner.cleanup()


async def test_at_the_total_cap_the_oldest_waiting_connection_makes_room(
    serve: ServerFactory,
) -> None:
    server = await serve(max_connections=16, request_read_timeout_s=30)
    held = []
    for _ in range(16):  # connected, never sending a request: a slowloris at rest
        held.append(await asyncio.open_connection(server.host, server.port))
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert server.guard.open == 16

    assert await healthz(server.base) == 200  # still answered at once

    oldest_reader, _ = held[0]
    assert await read_until_closed(oldest_reader, timeout=2) == b""
    assert server.guard.evicted == 1
    assert server.guard.open <= 16
    for _, writer in held:
        writer.close()


# -- malformed HTTP --------------------------------------------------------------------------
SECRET = b"client-bytes-7f3a"


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE " + SECRET + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nBroken header " + SECRET + b"\r\n\r\n",
        b"GET /" + SECRET * 1000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /api/conversations HTTP/1.1\r\nHost: x\r\nContent-Length: -1" + SECRET + b"\r\n\r\n",
    ],
    ids=["request-line", "header", "too-long", "content-length"],
)
async def test_a_malformed_request_gets_the_json_error_and_one_short_log_line(
    serve: ServerFactory, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    server = await serve()
    caplog.set_level(logging.DEBUG)
    for _ in range(5):
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(raw)
        await writer.drain()
        answer = await read_until_closed(reader, timeout=5)
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b" ", 2)[1] == b"400"
        assert b"application/json" in head
        assert set(json.loads(body)) == {"error", "message"}
        assert SECRET not in answer

    records = [r for r in caplog.records if r.name.startswith(("aiohttp", "bot.web"))]
    assert not [r for r in records if r.levelno >= logging.ERROR]
    for record in records:
        assert record.exc_info is None
        assert len(record.getMessage()) < 200
        assert SECRET.decode() not in record.getMessage()
    # Besides the access log's line, which every request gets: one line per request.
    said = [r for r in records if r.levelno >= logging.INFO and r.name != "aiohttp.access"]
    assert len(said) == 5
    assert await healthz(server.base) == 200


# -- floods from rotating addresses ----------------------------------------------------------
def from_address(n: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"198.51.100.{n}"}


async def test_rotating_addresses_cannot_start_unlimited_conversations(
    serve: ServerFactory,
) -> None:
    server = await serve(
        trusted_proxy_header="X-Forwarded-For",
        rate_per_minute=30,
        rate_burst=10,
        new_conversations_per_minute=1,
        new_conversations_burst=5,
    )
    async with aiohttp.ClientSession() as session:
        statuses = []
        for n in range(8):  # each from a new address: the per-IP limit never bites
            async with session.post(
                f"{server.base}/api/conversations", json={}, headers=from_address(n)
            ) as response:
                statuses.append(response.status)
                if response.status == 429:
                    assert int(response.headers["Retry-After"]) >= 1
                    assert (await response.json())["error"] == "rate_limited"
    assert statuses == [201] * 5 + [429] * 3


async def test_flags_are_capped_per_client_and_in_all(serve: ServerFactory) -> None:
    server = await serve(
        trusted_proxy_header="X-Forwarded-For", flags_per_client_per_hour=2, max_open_flags=5
    )

    async def hand_off(session: aiohttp.ClientSession, address: int) -> None:
        headers = from_address(address)
        async with session.post(
            f"{server.base}/api/conversations", json={}, headers=headers
        ) as response:
            conversation_id = (await response.json())["conversation_id"]
        async with session.post(
            f"{server.base}/api/conversations/{conversation_id}/handoff", headers=headers
        ) as response:
            assert response.status == 200  # the customer is still told a person will come
            assert (await response.json())["handoff"] is True

    async with aiohttp.ClientSession() as session:
        for _ in range(6):  # one client asking again and again
            await hand_off(session, 1)
        assert len(server.flags()) == 2
        for address in range(2, 12):  # then many clients
            await hand_off(session, address)
        assert len(server.flags()) == 5
        async with session.get(f"{server.base}/metrics") as response:
            metrics = await response.text()
    assert 'supportbot_flags_refused_total{why="client"} 4.0' in metrics
    assert 'supportbot_flags_refused_total{why="queue_full"} 7.0' in metrics


async def test_unsure_replies_cannot_take_the_places_of_hand_offs() -> None:
    """A customer given many unsure answers still gets a person when asking for one."""
    open_flags = 0

    async def count() -> int:
        return open_flags

    budget = FlagBudget(max_open=6, per_client_per_hour=2, open_flags=count)
    token = CURRENT_CLIENT.set("203.0.113.7")
    try:
        unsure = [await budget.admit(FlagReason.UNSURE) for _ in range(3)]
        handoffs = [await budget.admit(FlagReason.HANDOFF) for _ in range(3)]
    finally:
        CURRENT_CLIENT.reset(token)
    assert unsure == [True, True, False]  # their own share of the client's hour
    assert handoffs == [True, True, False]  # the hand-offs' share is whole

    # Many clients: unsure replies fill half the queue, hand-offs the rest.
    fresh = FlagBudget(max_open=6, per_client_per_hour=100, open_flags=count)
    assert [await fresh.admit(FlagReason.UNSURE) for _ in range(5)] == [True] * 3 + [False] * 2
    assert [await fresh.admit(FlagReason.HANDOFF) for _ in range(4)] == [True] * 3 + [False]


@pytest.mark.parametrize("text", ["\u200b", "\u200b\u200c\u200d\u2060\ufeff", " \u200e\n\u200b "])
async def test_a_message_of_only_invisible_characters_is_refused_as_empty(
    serve: ServerFactory, text: str
) -> None:
    server = await serve()
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.base}/api/conversations", json={}) as response:
            conversation_id = (await response.json())["conversation_id"]
        async with session.post(
            f"{server.base}/api/conversations/{conversation_id}/messages", json={"text": text}
        ) as response:
            assert response.status == 422
            body = await response.json()
    assert body["error"] == "invalid_message"
    assert "empty" in body["message"]
    assert server.flags() == []


def test_the_guard_holds_on_uvloop() -> None:
    """`supportbot serve` runs on uvloop where it is installed: the caps and the read
    deadline must hold on its transports too."""
    uvloop = pytest.importorskip("uvloop")

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def scenario() -> None:
        app = web.Application()
        app.router.add_get("/healthz", ok)
        guard = ConnectionGuard(max_total=64, max_per_ip=4, read_timeout_s=1.0)
        runner = GuardedAppRunner(app, guard)
        await runner.setup()
        try:
            await start_site(runner, "127.0.0.1", 0)
            port = runner.addresses[0][1]
            base = f"http://127.0.0.1:{port}"
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
            for _, writer in held:
                writer.write(b"POST /api/conversations HTTP/1.1\r\nHost: x\r\n")
            await asyncio.sleep(0.1)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await read_until_closed(reader, timeout=1) == b""  # over the cap: closed
            writer.close()
            assert await healthz(base, local_addr="127.0.0.2") == 200
            answer = await read_until_closed(held[0][0], timeout=3)  # the read deadline
            assert answer.startswith(b"HTTP/1.1 408")
            for _, w in held:
                w.close()
        finally:
            await runner.cleanup()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())
