"""The operators' side: who they are, what they see of a hand-off, what they say.

Operators are the members of the operators' channel plus ``operator_user_ids``. A hand-off
is posted in that channel with the reason, the customer's last message (as stored, so
scrubbed), a link to the thread and a hand-back button. What an operator writes in the
customer's thread, or under the hand-off post (passed on to the customer), is an agent turn;
the hand-back button or ``!handback`` gives the conversation back to the bot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import ConversationNotFound, InvalidMessage
from bot.core.types import Turn
from bot.slack import blocks
from bot.slack.config import SlackConfig
from bot.slack.delivery import Poster
from bot.slack.events import ButtonClick, SlackMessage
from bot.slack.state import HandoffPost, SlackState, Thread

log = logging.getLogger(__name__)


class OperatorDirectory:
    """Answers "is this user an operator?", caching the operators' channel members."""

    def __init__(
        self,
        client: AsyncWebClient,
        config: SlackConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.config = config
        self._clock = clock
        self._members: frozenset[str] = frozenset()
        self._fetched_at: float | None = None

    async def is_operator(self, user_id: str) -> bool:
        if user_id in self.config.operator_user_ids:
            return True
        if self.config.operators_channel is None:
            return False
        return user_id in await self._channel_members()

    async def _channel_members(self) -> frozenset[str]:
        now = self._clock()
        fresh = (
            self._fetched_at is not None and now - self._fetched_at < self.config.operators_cache_s
        )
        if fresh:
            return self._members
        channel = self.config.operators_channel
        assert channel is not None
        members: set[str] = set()
        cursor: str | None = None
        try:
            while True:
                response = await self.client.conversations_members(
                    channel=channel, cursor=cursor, limit=200
                )
                members.update(response.get("members") or [])
                cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    break
        except Exception as exc:
            # Keep the last known members; the configured ids still work.
            log.warning("could not list the operators' channel members (%s)", type(exc).__name__)
            self._fetched_at = now
            return self._members
        self._members, self._fetched_at = frozenset(members), now
        return self._members


class OperatorEngine(Protocol):
    """The part of the engine the operators' side calls."""

    async def add_agent_turn(self, conversation_id: str, text: str) -> Turn: ...

    async def hand_back(self, conversation_id: str) -> None: ...

    async def history(self, conversation_id: str) -> list[Turn]: ...


class OperatorDesk:
    """Hand-off posts, operators' messages and hand-backs."""

    def __init__(
        self,
        engine: OperatorEngine,
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
        self.directory = OperatorDirectory(poster.client, config, clock=clock)

    async def is_operator(self, user_id: str) -> bool:
        return await self.directory.is_operator(user_id)

    # -- hand-off ----------------------------------------------------------------------------
    async def handed_off(
        self,
        conversation_id: str,
        thread: Thread,
        *,
        customer: str | None,
        reason: str,
        direct: bool,
    ) -> None:
        """Post the hand-off of ``conversation_id`` (in ``thread``) to the operators."""
        channel = self.config.operators_channel
        if channel is None:
            log.warning(
                "conversation %s was handed off but no operators_channel is configured",
                conversation_id,
            )
            return
        client = self.poster.client
        link = await self.poster.try_call(
            "permalink of a handed-off thread",
            client.chat_getPermalink(channel=thread.channel, message_ts=thread.thread_ts),
        )
        permalink = str(link["permalink"]) if link is not None and link.get("permalink") else None
        turns = await self.engine.history(conversation_id)
        last = next((t.text for t in reversed(turns) if t.role == "customer"), None)
        post_blocks = blocks.handoff_post_blocks(
            reason=reason,
            customer=customer,
            channel=thread.channel,
            permalink=permalink,
            last_message=last,
            conversation_id=conversation_id,
            direct_message=direct,
        )
        ts = await self.poster.post(
            Thread(channel, ""), blocks.handoff_post_text(reason, permalink), post_blocks
        )
        if ts is not None:
            await self.state.remember_handoff_post(HandoffPost(channel, ts, conversation_id))

    # -- what operators say ------------------------------------------------------------------
    async def wrote_in_thread(
        self, message: SlackMessage, conversation_id: str, bot_user_id: str | None
    ) -> None:
        """An operator wrote in the customer's thread: an agent turn (the bot goes quiet)."""
        if message.is_handback(bot_user_id):
            await self.hand_back(conversation_id, message.user)
            return
        text = message.text_without_mention(bot_user_id)
        if text:
            await self._agent_turn(conversation_id, text)

    async def wrote_under_post(
        self, message: SlackMessage, post: HandoffPost, bot_user_id: str | None
    ) -> None:
        """An operator replied under the hand-off post: pass it on to the customer."""
        if message.is_handback(bot_user_id):
            await self.hand_back(post.conversation_id, message.user)
            return
        thread = await self.state.thread_of_conversation(post.conversation_id)
        text = message.text_without_mention(bot_user_id)
        if thread is None or not text or not await self._agent_turn(post.conversation_id, text):
            return
        await self.poster.post(thread, text, blocks.relayed_blocks(text, message.user))

    async def _agent_turn(self, conversation_id: str, text: str) -> bool:
        try:
            await self.engine.add_agent_turn(conversation_id, text)
        except (InvalidMessage, ConversationNotFound) as exc:
            log.warning(
                "operator message in conversation %s not recorded: %s", conversation_id, exc
            )
            return False
        return True

    # -- hand-back ---------------------------------------------------------------------------
    async def hand_back_clicked(self, click: ButtonClick) -> None:
        if not await self.is_operator(click.user):
            await self.poster.tell(click, "Only operators can hand a conversation back to the bot.")
            return
        await self.hand_back(click.value, click.user)

    async def hand_back(self, conversation_id: str, operator: str) -> None:
        """Give the conversation back to the bot, and say so under the hand-off post."""
        try:
            await self.engine.hand_back(conversation_id)
        except ConversationNotFound:
            log.warning("hand-back of unknown conversation %s ignored", conversation_id)
            return
        log.info("operator %s handed conversation %s back to the bot", operator, conversation_id)
        post = await self.state.latest_handoff_post(conversation_id)
        if post is None:
            return
        await self.poster.try_call(
            "hand-back note in the operators' channel",
            self.poster.client.chat_postMessage(
                channel=post.channel,
                thread_ts=post.ts,
                text=f"<@{operator}> handed the conversation back to the bot.",
            ),
        )
