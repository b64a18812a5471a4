"""A small OpenAI-compatible inference server for tests, served on 127.0.0.1.

It answers ``POST /v1/chat/completions`` and ``POST /v1/completions`` with streamed
server-sent events as vLLM does, records every request it receives, and misbehaves on
cue: a number of error answers (503...), dropped connections, a stall, a malformed chunk.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeInferenceServer:
    """``pieces`` (or ``script(body)``) are streamed one chunk each.

    * ``fail_times`` requests are answered ``fail_status`` before the server behaves;
    * ``drop_times`` requests have their connection closed before any answer;
    * ``stall_after``: after that many pieces the stream goes silent until the test ends;
    * ``malformed_after``: after that many pieces a chunk that is not JSON is sent;
    * ``cut_after``: after that many pieces the connection is closed mid-stream;
    * ``finish``: False ends the stream without a finish reason or ``[DONE]``.
    """

    pieces: Sequence[str] = ()
    script: Callable[[dict[str, Any]], Sequence[str]] | None = None
    fail_times: int = 0
    fail_status: int = 503
    drop_times: int = 0
    stall_after: int | None = None
    malformed_after: int | None = None
    cut_after: int | None = None
    finish: bool = True
    url: str = ""  # the base URL up to /v1, set once it is served
    received: list[ReceivedRequest] = field(default_factory=list)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/v1/completions", self._handle)
        return app

    def release(self) -> None:
        """End every stall (before the server shuts down)."""
        self.released.set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.received.append(ReceivedRequest(request.path, dict(request.headers), body))
        if self.drop_times > 0:
            self.drop_times -= 1
            assert request.transport is not None
            request.transport.close()  # the client sees the connection reset
            return web.Response()
        if self.fail_times > 0:
            self.fail_times -= 1
            error = {"error": {"message": "the model is loading", "code": self.fail_status}}
            return web.json_response(error, status=self.fail_status)
        chat = request.path.endswith("/chat/completions")
        pieces = self.script(body) if self.script is not None else self.pieces
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if chat:  # vLLM opens a chat stream with the role and no text
            await _send(response, {"choices": [{"index": 0, "delta": {"role": "assistant"}}]})
        for n, piece in enumerate(pieces):
            if self.stall_after is not None and n >= self.stall_after:
                await self.released.wait()
                return response
            if self.malformed_after is not None and n >= self.malformed_after:
                await response.write(b'data: {"choices": [{"delta": \n\n')
                break
            if self.cut_after is not None and n >= self.cut_after:
                assert request.transport is not None
                request.transport.close()
                return response
            await _send(response, _chunk(piece, chat=chat, finish=None))
            await asyncio.sleep(0)
        if self.stall_after is not None and self.stall_after >= len(pieces):
            await self.released.wait()
            return response
        if self.finish:
            await _send(response, _chunk("", chat=chat, finish="stop"))
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _chunk(text: str, *, chat: bool, finish: str | None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    if chat:
        choice["delta"] = {"content": text} if text else {}
    else:
        choice["text"] = text
    return {"id": "cmpl-fake", "model": "fake", "choices": [choice]}


async def _send(response: web.StreamResponse, chunk: dict[str, Any]) -> None:
    await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
