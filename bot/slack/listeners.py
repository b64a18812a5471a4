"""The slack-bolt ``AsyncApp``: acknowledge at once, answer in lazy listeners.

Every listener's ack function returns immediately (bolt acknowledges events itself); the
work runs in a lazy listener, as a task that :class:`TrackedLazyListenerRunner` keeps a
reference to and waits for at shutdown. A global middleware, after bolt has verified the
signature, refuses a replayed request (401) and acknowledges without acting an event it
already handled (Slack's retries, ``X-Slack-Retry-Num``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.lazy_listener.async_internals import to_runnable_function
from slack_bolt.lazy_listener.async_runner import AsyncLazyListenerRunner
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import StorageUnavailable
from bot.slack import blocks
from bot.slack.config import SlackConfig
from bot.slack.state import SlackState
from bot.slack.support import SlackSupport

log = logging.getLogger(__name__)

# Slack refuses a signed request older than 5 minutes; a signature is remembered longer.
REPLAY_WINDOW_S = 600.0
_BUTTONS = re.compile(
    "^("
    + "|".join(
        re.escape(a)
        for a in (
            blocks.RATE_UP,
            blocks.RATE_DOWN,
            blocks.REQUEST_HANDOFF,
            blocks.HAND_BACK,
            blocks.OPEN_THREAD,
        )
    )
    + ")$"
)


class _WithoutRequestBodies(logging.Filter):
    """Bolt logs a refused request with its body, which holds customer text: cut it off."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cut = message.find(", body:")
        if cut >= 0:
            record.msg, record.args = message[:cut] + ", body not logged)", ()
        return True


def _bolt_logger() -> logging.Logger:
    # Bolt copies this logger's filters into each logger it makes for the app.
    logger = logging.getLogger("bot.slack.bolt")
    if not any(isinstance(f, _WithoutRequestBodies) for f in logger.filters):
        logger.addFilter(_WithoutRequestBodies())
    return logger


class TrackedLazyListenerRunner(AsyncLazyListenerRunner):
    """Runs lazy listeners as tasks it keeps until they end, so none is garbage collected
    mid-way and shutdown can wait for the replies being written."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, function: Callable[..., Awaitable[None]], request: AsyncBoltRequest) -> None:
        task = asyncio.create_task(
            to_runnable_function(internal_func=function, logger=self.logger, request=request),
            name=f"slack-{getattr(function, '__name__', 'lazy')}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for running listeners, then cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled %d Slack replies still running at shutdown", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)


class _Listeners:
    """The listener functions bolt calls; each lazy one hands over to :class:`SlackSupport`.

    Bolt injects arguments by parameter name (``event``, ``body``, ``context``, ``ack``).
    """

    def __init__(self, support: SlackSupport) -> None:
        self.support = support

    async def acknowledge(self, ack: AsyncAck) -> None:
        await ack()

    async def answer_message(self, event: dict[str, Any], context: AsyncBoltContext) -> None:
        await _logged("message event", self.support.on_message(event, context.bot_user_id))

    async def answer_mention(self, event: dict[str, Any], context: AsyncBoltContext) -> None:
        await _logged("mention", self.support.on_mention(event, context.bot_user_id))

    async def take_reaction(self, event: dict[str, Any]) -> None:
        await _logged("reaction", self.support.on_reaction(event))

    async def take_click(self, body: dict[str, Any], context: AsyncBoltContext) -> None:
        await _logged("button click", self.support.on_button(body, context.bot_user_id))


async def _logged(what: str, work: Awaitable[None]) -> None:
    # bolt's own wrapper logs only the exception's text; this keeps the traceback.
    try:
        await work
    except Exception:
        log.exception("handling a Slack %s failed", what)


def build_bolt_app(
    config: SlackConfig,
    client: AsyncWebClient,
    support: SlackSupport,
    state: SlackState,
    runner: TrackedLazyListenerRunner,
) -> AsyncApp:
    """The bolt app with the bot's listeners; HTTP requests are verified with the signing
    secret, Socket Mode ones arrive over the authenticated socket."""
    http = config.resolved_mode == "http"
    app = AsyncApp(
        name="supportbot",
        client=client,
        signing_secret=config.secret("signing_secret") if http else "",
        # The ack function runs before the response; the answer runs in a lazy task.
        process_before_response=True,
        request_verification_enabled=http,
        logger=_bolt_logger(),
    )
    app.listener_runner.lazy_listener_runner = runner

    async def claim(key: str, ttl_s: float) -> bool:
        try:
            return await state.claim(key, ttl_s)
        except StorageUnavailable:
            # No room to remember it (logged by the store): handle it anyway, so that the
            # customer is told their message cannot be taken instead of hearing nothing.
            return True

    async def deduplicate(
        body: dict[str, Any], req: AsyncBoltRequest, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        if req.mode == "http":
            signature = req.headers.get("x-slack-signature", [""])[0]
            # Slack signs each delivery anew (retries too), so a signature seen twice is
            # a replay.
            if not await claim(f"sig:{signature}", REPLAY_WINDOW_S):
                log.warning("refused a replayed Slack request")
                return BoltResponse(status=401, body={"error": "invalid request"})
        event_id = body.get("event_id")
        if (
            body.get("type") == "event_callback"
            and isinstance(event_id, str)
            and not await claim(f"event:{event_id}", config.dedup_ttl_s)
        ):
            retry = req.headers.get("x-slack-retry-num", ["-"])[0]
            log.info("Slack event %s already handled (retry %s); acknowledged", event_id, retry)
            return BoltResponse(status=200, body="")
        await next()
        return None

    app.use(deduplicate)
    listeners = _Listeners(support)
    app.event("app_mention")(ack=listeners.acknowledge, lazy=[listeners.answer_mention])
    # Every message event, subtypes included: edits and deletions are acknowledged (an
    # unhandled event would answer 404 and Slack would retry it) and then ignored.
    app.event("message")(ack=listeners.acknowledge, lazy=[listeners.answer_message])
    app.event("reaction_added")(ack=listeners.acknowledge, lazy=[listeners.take_reaction])
    app.action(_BUTTONS)(ack=listeners.acknowledge, lazy=[listeners.take_click])
    return app


SUBSCRIBED_EVENTS = ("app_mention", "message", "reaction_added")
