"""What the bot does with each Slack event: the translation between Slack and the engine.

One Slack thread is one conversation (channel ``slack``, external ref ``<channel>:<thread
ts>``). Customers' messages go to the engine and the reply comes back into the thread;
operators' messages in a customer's thread (or in the hand-off post's thread, passed on to
the customer) are agent turns, and the bot stays quiet until an operator hands back.
Listeners call these methods from lazy tasks, after Slack has been acknowledged.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any, Literal, Protocol, runtime_checkable

from bot.core.errors import (
    ConversationHandedOff,
    ConversationNotFound,
    InvalidMessage,
    StorageUnavailable,
    TurnNotFound,
)
from bot.core.types import (
    CUSTOMER_REQUEST,
    Conversation,
    ConversationState,
    IncomingMessage,
    Rating,
    Reply,
    ReplyDelta,
    ReplyDone,
    ReplyEvent,
    ReplyRetracted,
    Turn,
)
from bot.slack import blocks
from bot.slack.config import SlackConfig
from bot.slack.delivery import Poster, ProgressMessage
from bot.slack.events import (
    ButtonClick,
    SlackMessage,
    button_click,
    reaction_rating,
    thread_context,
    written_message,
)
from bot.slack.operators import OperatorDesk
from bot.slack.state import HandoffPost, KnownThread, SlackState, Thread
from bot.web.ratelimit import RateLimiter

log = logging.getLogger(__name__)

CHANNEL = "slack"
_SORRY = "Sorry, something went wrong on our side. Please try again in a moment."
_CANNOT_STORE = (
    "Sorry, we can't save new messages right now, so I can't take this one. Please send it "
    "again in a few minutes; nothing you sent before is lost."
)
_HELLO = "Hi! Ask me your question here and I'll answer in this thread."
# The hand-off button pressed again: only once an operator has written has someone
# taken the conversation over; after an automatic hand-off one has only been asked.
_ALREADY_TAKEN_OVER = "A member of our support team already has this conversation."
_ALREADY_WAITING = "Our support team already has your request; a person will answer in this thread."
_MAX_NOTICED_USERS = 10_000


@runtime_checkable
class SlackEngine(Protocol):
    """The part of ``bot.core.engine.ConversationEngine`` that Slack calls."""

    async def start_conversation(
        self, channel: str, external_ref: str | None = None
    ) -> Conversation: ...

    def handle_message(self, message: IncomingMessage) -> AsyncIterator[ReplyEvent]: ...

    async def rate(self, rating: Rating) -> None: ...

    async def request_handoff(self, conversation_id: str, reason: str) -> Reply: ...

    async def hand_back(self, conversation_id: str) -> None: ...

    async def add_agent_turn(self, conversation_id: str, text: str) -> Turn: ...

    async def history(self, conversation_id: str) -> list[Turn]: ...


class SlackSupport:
    """Handles messages, mentions, reactions and button clicks for one workspace."""

    def __init__(
        self,
        engine: SlackEngine,
        state: SlackState,
        poster: Poster,
        config: SlackConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.state = state
        self.poster = poster
        self.config = config
        self.desk = OperatorDesk(engine, state, poster, config, clock=clock)
        self.limiter = RateLimiter(config.user_rate_per_minute, config.user_rate_burst, clock=clock)
        self._clock = clock
        self._noticed: dict[str, float] = {}  # user -> until when a rate notice is showing

    # -- events ------------------------------------------------------------------------------
    async def on_message(self, event: dict[str, Any], bot_user_id: str | None) -> None:
        """A ``message`` event: direct messages, and replies in threads the bot knows."""
        message = written_message(event, bot_user_id)
        if message is None:
            log.debug("ignored a %s message event", event.get("subtype") or "bot's")
            return
        await self._route(message, bot_user_id, mentioned=False)

    async def on_mention(self, event: dict[str, Any], bot_user_id: str | None) -> None:
        """An ``app_mention`` event: the bot is asked in a channel."""
        message = written_message(event, bot_user_id)
        if message is not None:
            await self._route(message, bot_user_id, mentioned=True)

    async def on_reaction(self, event: dict[str, Any]) -> None:
        """A reaction added: :+1: / :-1: on one of the bot's replies rates it."""
        rating = reaction_rating(event)
        if rating is None:
            return
        turn_id = await self.state.turn_of_message(rating.channel, rating.ts)
        if turn_id is not None:
            await self._rate(turn_id, rating.value)

    async def on_button(self, body: dict[str, Any], bot_user_id: str | None) -> None:
        """A click on one of the bot's buttons."""
        click = button_click(body)
        if click is None:
            return
        if click.action_id in (blocks.RATE_UP, blocks.RATE_DOWN):
            await self._rated_by_button(click)
        elif click.action_id == blocks.REQUEST_HANDOFF:
            await self._handoff_requested(click)
        elif click.action_id == blocks.HAND_BACK:
            await self.desk.hand_back_clicked(click)

    # -- routing -----------------------------------------------------------------------------
    async def _route(
        self, message: SlackMessage, bot_user_id: str | None, *, mentioned: bool
    ) -> None:
        """Who wrote where decides: a customer to answer, an operator to record, or nothing."""
        action: Callable[[], Awaitable[None]] | None = None
        if message.direct:
            action = partial(self._customer, message, bot_user_id)
        elif message.thread_ts is not None:
            post = await self._handoff_post_thread(message)
            known = await self.state.known_thread(message.thread)
            if post is not None:
                action = partial(self.desk.wrote_under_post, message, post, bot_user_id)
            elif known is not None and await self._is_operator_here(message, known):
                action = partial(
                    self.desk.wrote_in_thread, message, known.conversation_id, bot_user_id
                )
            elif known is not None or mentioned:
                action = partial(self._customer, message, bot_user_id)
        elif mentioned:
            action = partial(self._customer, message, bot_user_id)
        if action is None:
            return
        # A mention in a thread arrives twice (message and app_mention): act on it once.
        try:
            first = await self.state.claim(message.key, self.config.dedup_ttl_s)
        except StorageUnavailable:
            # Nothing can be remembered (the store logged why). Act on one copy anyway, so
            # that the customer is told rather than ignored: a mention's app_mention event.
            mentions_bot = message.text_without_mention(bot_user_id) != message.text.strip()
            first = mentioned or not mentions_bot
        if first:
            await action()

    async def _is_operator_here(self, message: SlackMessage, known: KnownThread) -> bool:
        # An operator asking the bot something in their own thread is its customer there.
        return message.user != known.customer and await self.desk.is_operator(message.user)

    async def _handoff_post_thread(self, message: SlackMessage) -> HandoffPost | None:
        if message.channel != self.config.operators_channel or message.thread_ts is None:
            return None
        return await self.state.handoff_post_at(message.channel, message.thread_ts)

    # -- customers ---------------------------------------------------------------------------
    async def _customer(self, message: SlackMessage, bot_user_id: str | None) -> None:
        thread = message.thread
        wait = self.limiter.acquire(message.user)
        if wait > 0:
            await self._too_fast(message, wait)
            return
        text = message.text_without_mention(bot_user_id)
        try:
            known = await self.state.known_thread(thread)
            if known is None and message.in_thread and self.config.thread_context_chars:
                text = await self._with_thread_context(message, text, bot_user_id)
            conversation = await self.engine.start_conversation(CHANNEL, thread.external_ref)
            if known is None:
                await self.state.remember_thread(thread, conversation.id, message.user)
        except StorageUnavailable:
            # The store logged the cause once; the customer hears why rather than nothing.
            await self.poster.post(thread, _CANNOT_STORE, blocks.text_sections(_CANNOT_STORE))
            return
        if not text:
            await self.poster.post(thread, _HELLO, blocks.text_sections(_HELLO))
            return
        await self._answer(conversation, thread, text, message)

    async def _answer(
        self, conversation: Conversation, thread: Thread, text: str, message: SlackMessage
    ) -> None:
        progress = ProgressMessage(self.poster, thread)
        if conversation.state is not ConversationState.HUMAN:
            await progress.start()  # with an operator, the bot stays quiet
        reply: Reply | None = None
        events = self.engine.handle_message(IncomingMessage(conversation.id, text))
        try:
            shown = ""
            async for event in events:
                if isinstance(event, ReplyDelta):
                    shown += event.text
                    progress.show(shown)
                elif isinstance(event, ReplyRetracted):
                    shown = ""
                    progress.show(shown)
                elif isinstance(event, ReplyDone):
                    reply = event.reply
        except ConversationHandedOff:
            log.info("conversation %s is with an operator; the bot stays quiet", conversation.id)
            await progress.discard()
            return
        except InvalidMessage as exc:
            notice = f"Sorry, I can't answer that message: {exc}."
            await progress.finish(blocks.escape(notice), blocks.text_sections(notice))
            return
        except StorageUnavailable:
            await progress.finish(_CANNOT_STORE, blocks.text_sections(_CANNOT_STORE))
            return
        except Exception:
            log.exception(
                "answering in Slack channel %s thread %s failed", thread.channel, thread.thread_ts
            )
            await progress.finish(_SORRY, blocks.text_sections(_SORRY))
            return
        finally:
            await _close(events)
        if reply is None:  # pragma: no cover - the engine always ends with ReplyDone
            await progress.discard()
            return
        ts = await progress.finish(blocks.escape(reply.text), blocks.reply_blocks(reply))
        if ts is not None:
            try:
                await self.state.remember_reply(thread.channel, ts, reply.turn_id, conversation.id)
            except StorageUnavailable:
                # The customer has the reply; what is lost is rating it by a reaction. The
                # store's health has already said, once, that it is full.
                log.warning(
                    "reply %s in channel %s not remembered: reactions to it will not rate it",
                    ts,
                    thread.channel,
                )
        if reply.handoff:
            await self.desk.handed_off(
                conversation.id,
                thread,
                customer=message.user,
                reason=blocks.handoff_reason(reply),
                direct=message.direct,
            )

    async def _with_thread_context(
        self, message: SlackMessage, text: str, bot_user_id: str | None
    ) -> str:
        """Asked in the middle of a thread it has not seen: the question is usually above."""
        assert message.thread_ts is not None
        response = await self.poster.try_call(
            f"thread history in {message.channel}",
            self.poster.client.conversations_replies(
                channel=message.channel, ts=message.thread_ts, limit=50
            ),
        )
        if response is None:
            return text
        earlier = thread_context(
            list(response.get("messages") or []),
            message.ts,
            bot_user_id,
            self.config.thread_context_chars,
        )
        return "\n".join(part for part in (earlier, text) if part)

    async def _too_fast(self, message: SlackMessage, wait: float) -> None:
        now = self._clock()
        if self._noticed.get(message.user, 0.0) > now:
            return  # already told; say nothing more until the wait is over
        if len(self._noticed) >= _MAX_NOTICED_USERS:
            self._noticed = {u: t for u, t in self._noticed.items() if t > now}
        self._noticed[message.user] = now + wait
        text = self.config.rate_limited_message.format(seconds=max(1, math.ceil(wait)))
        await self.poster.try_call(
            f"rate-limit notice in {message.channel}",
            self.poster.client.chat_postMessage(
                channel=message.channel, thread_ts=message.thread.thread_ts, text=text
            ),
        )

    # -- buttons -----------------------------------------------------------------------------
    async def _rated_by_button(self, click: ButtonClick) -> None:
        value: Literal["up", "down"] = "up" if click.action_id == blocks.RATE_UP else "down"
        if not await self._rate(click.value, value):
            return
        await self.poster.try_call(
            f"rated reply in {click.channel}",
            self.poster.client.chat_update(
                channel=click.channel,
                ts=click.message_ts,
                text=blocks.fallback_text(click.message_text),
                blocks=blocks.rated_blocks(click.message_blocks, value),
            ),
        )

    async def _rate(self, turn_id: str, value: Literal["up", "down"]) -> bool:
        try:
            await self.engine.rate(Rating(turn_id, value, None, channel=CHANNEL))
        except (TurnNotFound, InvalidMessage) as exc:
            log.warning("Slack rating of turn %s ignored: %s", turn_id, exc)
            return False
        return True

    async def _handoff_requested(self, click: ButtonClick) -> None:
        known = await self.state.known_thread(click.thread)
        conversation_id = known.conversation_id if known is not None else click.value
        try:
            reply = await self.engine.request_handoff(conversation_id, CUSTOMER_REQUEST)
        except ConversationHandedOff as exc:
            await self.poster.tell(
                click, _ALREADY_TAKEN_OVER if exc.taken_over else _ALREADY_WAITING
            )
            return
        except ConversationNotFound:
            log.warning("hand-off requested for unknown conversation %s", conversation_id)
            return
        await self.poster.try_call(
            f"hand-off button in {click.channel}",
            self.poster.client.chat_update(
                channel=click.channel,
                ts=click.message_ts,
                text=blocks.fallback_text(click.message_text),
                blocks=blocks.without_handoff_button(click.message_blocks),
            ),
        )
        ts = await self.poster.post(
            click.thread, blocks.escape(reply.text), blocks.reply_blocks(reply)
        )
        if ts is not None:
            await self.state.remember_reply(click.channel, ts, reply.turn_id, conversation_id)
        await self.desk.handed_off(
            conversation_id,
            click.thread,
            customer=click.user,
            reason=blocks.handoff_reason(reply),
            direct=click.channel.startswith("D"),
        )


async def _close(events: AsyncIterator[ReplyEvent]) -> None:
    """Close the engine's stream (stops the model at once when a reply is abandoned)."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()
