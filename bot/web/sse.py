"""Server-sent events over a streamed response: one JSON ``data`` line per event."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.web.errors import dumps


class EventStream:
    """A prepared ``text/event-stream`` response; each :meth:`send` is written at once."""

    def __init__(self, response: web.StreamResponse) -> None:
        self.response = response

    @classmethod
    async def open(cls, request: web.Request) -> EventStream:
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                # Reverse proxies (nginx) must not hold the stream back to buffer it.
                "X-Accel-Buffering": "no",
            },
        )
        await response.prepare(request)
        return cls(response)

    async def send(self, event: str, data: dict[str, Any]) -> None:
        """Write one event; raises ConnectionResetError when the client has gone.

        ``dumps`` escapes newlines inside strings, so ``data`` is always one line.
        """
        frame = f"event: {event}\ndata: {dumps(data)}\n\n"
        await self.response.write(frame.encode("utf-8"))

    async def close(self) -> None:
        await self.response.write_eof()
