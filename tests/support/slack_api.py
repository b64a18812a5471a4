"""A fake Slack Web API on 127.0.0.1 that records every call it receives.

Modelled on bolt-python's ``tests/mock_web_api_server``: a real HTTP server on a free
loopback port that answers the methods the bot uses with Slack-shaped JSON, records each
call (method, arguments, time), can be told to fail the next calls of a method (429 with
``Retry-After``, or 500), and serves a Socket Mode WebSocket so that Socket Mode can be
tested end to end. Point ``slack_api_url`` at :attr:`FakeSlackApi.api_url`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T0001"


@dataclass(frozen=True)
class ApiCall:
    method: str
    args: dict[str, Any]
    at: float  # time.monotonic() when received
    token: str | None

    def __getitem__(self, key: str) -> Any:
        return self.args[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.args.get(key, default)

    @property
    def blocks(self) -> list[dict[str, Any]]:
        blocks = self.args.get("blocks") or []
        return json.loads(blocks) if isinstance(blocks, str) else list(blocks)

    def action_ids(self) -> list[str]:
        return [
            element.get("action_id", "")
            for block in self.blocks
            if block.get("type") == "actions"
            for element in block.get("elements", [])
        ]

    def button_value(self, action_id: str) -> str:
        for block in self.blocks:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element.get("action_id") == action_id:
                    return str(element["value"])
        raise KeyError(action_id)


@dataclass
class _Failure:
    status: int
    retry_after: int | None
    error: str


@dataclass
class FakeSlackApi:
    """Start with :meth:`start`, stop with :meth:`stop` (or use the ``slack_api`` fixture)."""

    members: dict[str, list[str]] = field(default_factory=dict)  # conversations.members
    threads: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[ApiCall] = field(default_factory=list)
    socket_acks: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._failures: dict[str, list[_Failure]] = {}
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_ready = asyncio.Event()
        self.port = 0

    # -- lifetime --------------------------------------------------------------------------------
    async def start(self) -> FakeSlackApi:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        for socket in self._sockets:
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    # -- scripting -------------------------------------------------------------------------------
    def fail_next(
        self,
        method: str,
        times: int = 1,
        *,
        status: int = 429,
        retry_after: int | None = 1,
        error: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with ``status`` (429 carries
        ``Retry-After``; 200 answers ``{"ok": false, "error": error}``)."""
        if error is None:
            error = {429: "ratelimited", 200: "fatal_error"}.get(status, "internal_error")
        failure = _Failure(status, retry_after if status == 429 else None, error)
        self._failures.setdefault(method, []).extend([failure] * times)

    def failures_left(self, method: str) -> int:
        return len(self._failures.get(method, []))

    # -- inspection ------------------------------------------------------------------------------
    def of(self, method: str, **where: Any) -> list[ApiCall]:
        """Recorded calls of ``method`` whose arguments include ``where``."""
        return [
            c
            for c in self.calls
            if c.method == method and all(c.args.get(k) == v for k, v in where.items())
        ]

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        *,
        timeout: float = 10.0,
        where: Callable[[ApiCall], bool] = lambda call: True,
        **args: Any,
    ) -> list[ApiCall]:
        """Wait (at most ``timeout`` s) until ``count`` calls of ``method`` match; return them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.of(method, **args) if where(c)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                seen = [
                    (c.method, {k: c.args.get(k) for k in ("channel", "ts", "thread_ts")})
                    for c in self.calls
                ]
                raise AssertionError(f"expected {count} {method} {args}; calls: {seen}")
            await asyncio.sleep(0.02)

    # -- Socket Mode -----------------------------------------------------------------------------
    async def push_socket_event(self, payload: dict[str, Any], *, timeout: float = 10.0) -> str:
        """Send an ``events_api`` envelope over the socket; returns its envelope id."""
        await asyncio.wait_for(self._socket_ready.wait(), timeout)
        envelope_id = uuid.uuid4().hex
        envelope = {
            "envelope_id": envelope_id,
            "type": "events_api",
            "payload": payload,
            "accepts_response_payload": False,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        await self._sockets[-1].send_str(json.dumps(envelope))
        return envelope_id

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self._sockets.append(socket)
        await socket.send_str(json.dumps({"type": "hello", "num_connections": 1}))
        self._socket_ready.set()
        async for message in socket:
            if message.type == web.WSMsgType.TEXT:
                self.socket_acks.append(json.loads(message.data))
        return socket

    # -- the Web API -----------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(dict(await request.post()))
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") or args.pop("token", None)
        failures = self._failures.get(method)
        if failures:
            failure = failures.pop(0)
            self.calls.append(
                ApiCall(method, {**args, "_failed": failure.status}, time.monotonic(), token)
            )
            headers = (
                {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            )
            return web.json_response(
                {"ok": False, "error": failure.error}, status=failure.status, headers=headers
            )
        answer = self._answer(method, args, request)
        if method == "chat.postMessage" and answer.get("ok"):
            args["_ts"] = answer["ts"]
        self.calls.append(ApiCall(method, args, time.monotonic(), token))
        return web.json_response(answer)

    def _next_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.000100"

    def _answer(self, method: str, args: dict[str, Any], request: web.Request) -> dict[str, Any]:
        channel = args.get("channel")
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://example.slack.com/",
                "team": "Example",
                "user": "supportbot",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            ts = self._next_ts()
            return {
                "ok": True,
                "channel": channel,
                "ts": ts,
                "message": {"text": args.get("text"), "ts": ts},
            }
        if method == "chat.update":
            return {"ok": True, "channel": channel, "ts": args.get("ts"), "text": args.get("text")}
        if method in ("chat.delete", "reactions.add", "reactions.remove"):
            return {"ok": True, "channel": channel, "ts": args.get("ts")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "chat.getPermalink":
            ts = str(args.get("message_ts", "")).replace(".", "")
            return {
                "ok": True,
                "channel": channel,
                "permalink": f"https://example.slack.com/archives/{channel}/p{ts}",
            }
        if method == "conversations.replies":
            messages = self.threads.get((str(channel), str(args.get("ts"))), [])
            return {"ok": True, "messages": messages, "has_more": False}
        if method == "conversations.members":
            return {
                "ok": True,
                "members": self.members.get(str(channel), []),
                "response_metadata": {"next_cursor": ""},
            }
        if method == "users.info":
            return {
                "ok": True,
                "user": {"id": args.get("user"), "name": "someone", "is_bot": False},
            }
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}
        return {"ok": False, "error": "unknown_method"}


def texts(calls: Iterable[ApiCall]) -> list[str]:
    return [str(c.get("text")) for c in calls]
