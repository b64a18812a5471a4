"""The API routes: translate a request into an engine call and the result into a response.

Nothing here blocks: the engine's ports run retrieval and the model in their own workers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.core.errors import SupportbotError
from bot.core.types import (
    CUSTOMER_REQUEST,
    IncomingMessage,
    Rating,
    Reply,
    ReplyDelta,
    ReplyDone,
    ReplyEvent,
    ReplyRetracted,
)
from bot.web.errors import ApiError, from_domain, json_response
from bot.web.flood import refuse_when_too_many_conversations
from bot.web.keys import ENGINE, METRICS, NEW_CONVERSATIONS, STORAGE_STATUS, WEB_CONFIG
from bot.web.metrics import WebMetrics
from bot.web.metrics_access import check_metrics_access
from bot.web.payloads import (
    MAX_COMMENT_CHARS,
    read_json_object,
    reply_json,
    text_field,
    turn_json,
    wants_event_stream,
)
from bot.web.sse import EventStream

log = logging.getLogger(__name__)

CHANNEL = "web"
_DISCONNECT_CHECK_S = 0.5
_T = TypeVar("_T")


async def create_conversation(request: web.Request) -> web.Response:
    await read_json_object(request, required=False)  # no fields yet; still validated
    refuse_when_too_many_conversations(request.app[NEW_CONVERSATIONS])
    conversation = await request.app[ENGINE].start_conversation(CHANNEL)
    return json_response({"conversation_id": conversation.id}, status=201)


async def post_message(request: web.Request) -> web.StreamResponse:
    """Answer a customer message, as one JSON reply or as server-sent events.

    The first event is awaited before anything is sent, so an unknown conversation, a
    hand-off or an invalid message still gets its own status in streaming mode; failures
    after that arrive as an ``error`` event.
    """
    data = await read_json_object(request)
    text = text_field(data, "text", required=True)
    assert text is not None
    message = IncomingMessage(request.match_info["conversation_id"], text)
    timer = _FirstTokenTimer(request.app[METRICS])
    async with _closing(request.app[ENGINE].handle_message(message)) as events:
        first = await _next_event(request, events)
        if first is None:
            raise RuntimeError("the engine ended the reply without a result")
        timer.seen(first)
        if wants_event_stream(request):
            return await _stream_reply(request, first, events, timer)
        reply = await _collect_reply(request, first, events, timer)
    request.app[METRICS].observe_reply(reply)
    return json_response(_reply_body(request, reply))


async def request_handoff(request: web.Request) -> web.Response:
    await read_json_object(request, required=False)  # no fields yet; still validated
    # The flag's detail is ours: free text from clients is not kept.
    reply = await request.app[ENGINE].request_handoff(
        request.match_info["conversation_id"], CUSTOMER_REQUEST
    )
    request.app[METRICS].handoffs.labels(trigger="customer").inc()
    return json_response(_reply_body(request, reply))


async def conversation_turns(request: web.Request) -> web.Response:
    """The turns so far and who answers next: the widget polls this after a hand-off, and
    learns from ``state`` that an operator handed the conversation back to the bot."""
    conversation_id = request.match_info["conversation_id"]
    engine = request.app[ENGINE]
    conversation = await engine.conversation(conversation_id)
    turns = await engine.history(conversation_id)
    return json_response(
        {
            "conversation_id": conversation_id,
            "state": conversation.state.value,
            "turns": [turn_json(t) for t in turns],
        }
    )


async def rate_turn(request: web.Request) -> web.Response:
    data = await read_json_object(request)
    value = data.get("rating")
    if value not in ("up", "down"):
        raise ApiError(400, "invalid_request", '\'rating\' must be "up" or "down".')
    comment = text_field(data, "comment", required=False, max_chars=MAX_COMMENT_CHARS)
    turn_id = request.match_info["turn_id"]
    await request.app[ENGINE].rate(
        Rating(turn_id=turn_id, value=value, comment=comment or None, channel=CHANNEL)
    )
    request.app[METRICS].ratings.labels(value=value).inc()
    return json_response({"turn_id": turn_id, "rating": value})


async def healthz(request: web.Request) -> web.Response:
    return health_response(request.app)


def health_response(app: web.Application) -> web.Response:
    """200 once ``app`` has started; ``"degraded"`` with the storage state while the disk
    is full.

    A full disk keeps the status 200 on purpose: taken out of a load balancer, the server
    could not tell customers to retry later (they would get the proxy's error page instead
    of the polite 503 with ``Retry-After``). Alerting reads ``supportbot_storage_writable``
    in /metrics, or this body.
    """
    if ENGINE not in app:
        return json_response({"status": "starting"}, status=503)
    storage = app.get(STORAGE_STATUS)
    if storage is None or storage.writable:
        return json_response({"status": "ok"})
    return json_response(
        {
            "status": "degraded",
            "storage": {
                "writable": False,
                "reason": "disk_full",
                "since": storage.failing_since,
                "refused_writes": storage.failed_writes,
            },
        }
    )


async def metrics(request: web.Request) -> web.Response:
    """The main port's /metrics: for the scraper's token or this machine only
    (:mod:`bot.web.metrics_access`); the health port's answers without asking."""
    check_metrics_access(request, request.config_dict[WEB_CONFIG])
    return metrics_response(request.app)


def metrics_response(app: web.Application) -> web.Response:
    """``app``'s Prometheus metrics."""
    collected = app[METRICS]
    storage = app.get(STORAGE_STATUS)
    if storage is not None:
        collected.observe_storage(storage.writable, storage.failed_writes)
    return web.Response(body=collected.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


# -- replies ---------------------------------------------------------------------------------
def _reply_body(request: web.Request, reply: Reply) -> dict[str, Any]:
    return reply_json(reply, with_source_text=request.config_dict[WEB_CONFIG].expose_source_text)


async def _collect_reply(
    request: web.Request,
    first: ReplyEvent,
    events: AsyncIterator[ReplyEvent],
    timer: _FirstTokenTimer,
) -> Reply:
    async def collect() -> Reply:
        event: ReplyEvent | None = first
        while not isinstance(event, ReplyDone):
            event = await anext(events, None)
            if event is None:
                raise RuntimeError("the engine ended the reply without a result")
            timer.seen(event)
        return event.reply

    # One watched task for the whole reply, not one per event: a copied answer comes as a
    # delta per word, and a JSON client waits for none of them.
    return await _unless_client_leaves(request, collect())


async def _next_event(request: web.Request, events: AsyncIterator[ReplyEvent]) -> ReplyEvent | None:
    return await _unless_client_leaves(request, anext(events, None))


async def _unless_client_leaves(request: web.Request, work: Awaitable[_T]) -> _T:
    """The result of ``work``, or ConnectionResetError as soon as the client has gone.

    aiohttp does not cancel a handler whose client disconnects, and a model can take a
    while for the next piece: without this check an abandoned reply would keep a worker
    slot busy until it is finished.
    """
    pending = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({pending}, timeout=_DISCONNECT_CHECK_S)
        if done:
            return pending.result()
        transport = request.transport
        if transport is None or transport.is_closing():
            pending.cancel()
            with suppress(asyncio.CancelledError):
                await pending
            raise ConnectionResetError("the client went away")


async def _stream_reply(
    request: web.Request,
    first: ReplyEvent,
    events: AsyncIterator[ReplyEvent],
    timer: _FirstTokenTimer,
) -> web.StreamResponse:
    stream = await EventStream.open(request)
    metrics = request.app[METRICS]
    event: ReplyEvent | None = first
    try:
        while event is not None:
            if isinstance(event, ReplyDelta):
                await stream.send("delta", {"text": event.text})
            elif isinstance(event, ReplyRetracted):
                metrics.retractions.inc()
                # No reason: the generator stopped part-way and the text is unfinished.
                reason = event.reason.value if event.reason is not None else "unfinished"
                await stream.send("retract", {"reason": reason})
            elif isinstance(event, ReplyDone):
                metrics.observe_reply(event.reply)
                await stream.send("done", _reply_body(request, event.reply))
                break
            event = await _next_event(request, events)
            if event is not None:
                timer.seen(event)
        else:
            raise RuntimeError("the engine ended the reply without a result")
    except ConnectionResetError:
        # The visitor closed the page; leaving the loop closes the engine's generator.
        log.debug("client left during a streamed reply")
        return stream.response
    except SupportbotError as exc:
        await _send_error(stream, from_domain(exc))
    except Exception:
        log.exception("streamed reply failed")
        await _send_error(stream, ApiError(500, "internal_error", "Something went wrong."))
    with suppress(ConnectionResetError):
        await stream.close()
    return stream.response


async def _send_error(stream: EventStream, error: ApiError) -> None:
    with suppress(ConnectionResetError):
        await stream.send("error", {"error": error.code, "message": error.message})


class _FirstTokenTimer:
    """Observes the time from the request to the first reply text, once."""

    def __init__(self, metrics: WebMetrics) -> None:
        self.metrics = metrics
        self.started = time.perf_counter()
        self.done = False

    def seen(self, event: ReplyEvent) -> None:
        if self.done:
            return
        has_text = (isinstance(event, ReplyDelta) and event.text) or (
            isinstance(event, ReplyDone) and event.reply.text
        )
        if has_text:
            self.done = True
            self.metrics.time_to_first_token.observe(time.perf_counter() - self.started)


@asynccontextmanager
async def _closing(events: AsyncIterator[ReplyEvent]) -> AsyncIterator[AsyncIterator[ReplyEvent]]:
    """Close the engine's generator however the handler ends, so an abandoned reply stops
    generating (and releases its worker slot) at once."""
    try:
        yield events
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
