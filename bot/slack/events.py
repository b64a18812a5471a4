"""Slack event payloads read into small records, and what the bot should do with them.

Pure functions: no I/O, so each rule (ignore bots, edits, deletions; which thread a message
belongs to; which reactions are ratings) is easy to read and to test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from bot.slack.state import Thread

# Message subtypes that are a person writing; every other subtype (edits, deletions,
# joins, bot messages, ...) is not a new message to answer.
_WRITTEN_SUBTYPES = {None, "thread_broadcast", "file_share"}
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_SKIN_TONE = re.compile(r"::skin-tone-\d$")
_RATING_REACTIONS: dict[str, Literal["up", "down"]] = {
    "+1": "up",
    "thumbsup": "up",
    "-1": "down",
    "thumbsdown": "down",
}
HANDBACK_COMMAND = "!handback"


@dataclass(frozen=True)
class SlackMessage:
    """A message a person wrote, as the bot needs it."""

    channel: str
    ts: str
    user: str
    text: str  # as written, mentions included
    thread_ts: str | None  # None for a message at the top level of a channel
    direct: bool  # a direct message with the bot

    @property
    def thread(self) -> Thread:
        """The thread the bot answers in: the message's thread, or one it starts."""
        return Thread(self.channel, self.thread_ts or self.ts)

    @property
    def in_thread(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def key(self) -> str:
        """Identifies the message whichever event reports it (``message`` or ``app_mention``)."""
        return f"msg:{self.channel}:{self.ts}"

    def text_without_mention(self, user_id: str | None) -> str:
        """The text with the bot's mentions removed (other people's stay)."""
        if user_id is None:
            return self.text.strip()
        return re.sub(rf"<@{re.escape(user_id)}(?:\|[^>]*)?>", "", self.text).strip()

    def is_handback(self, bot_user_id: str | None) -> bool:
        return self.text_without_mention(bot_user_id).strip().lower() == HANDBACK_COMMAND


def written_message(event: dict[str, Any], bot_user_id: str | None) -> SlackMessage | None:
    """The person's message an event reports, or None for anything the bot must not answer:
    edits, deletions and other subtypes, its own messages, other bots' messages, hidden
    messages and events without a user or channel."""
    if event.get("subtype") not in _WRITTEN_SUBTYPES or event.get("hidden"):
        return None
    if event.get("bot_id") or event.get("bot_profile"):
        return None
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if not (isinstance(user, str) and isinstance(channel, str) and isinstance(ts, str)):
        return None
    if user == bot_user_id:
        return None
    thread_ts = event.get("thread_ts")
    direct = event.get("channel_type") == "im" or channel.startswith("D")
    return SlackMessage(
        channel=channel,
        ts=ts,
        user=user,
        text=str(event.get("text") or ""),
        thread_ts=thread_ts if isinstance(thread_ts, str) else None,
        direct=direct,
    )


@dataclass(frozen=True)
class ReactionRating:
    channel: str
    ts: str  # the rated message
    user: str
    value: Literal["up", "down"]


def reaction_rating(event: dict[str, Any]) -> ReactionRating | None:
    """A :+1: or :-1: (any skin tone) added to a message, as a rating; otherwise None."""
    item = event.get("item") or {}
    if item.get("type") != "message":
        return None
    name = _SKIN_TONE.sub("", str(event.get("reaction") or ""))
    value = _RATING_REACTIONS.get(name)
    channel, ts, user = item.get("channel"), item.get("ts"), event.get("user")
    if value is None or not (isinstance(channel, str) and isinstance(ts, str)):
        return None
    return ReactionRating(channel, ts, str(user or ""), value)


@dataclass(frozen=True)
class ButtonClick:
    """A click on one of the bot's buttons."""

    action_id: str
    value: str
    user: str
    channel: str
    message_ts: str
    thread: Thread
    message_text: str
    message_blocks: list[dict[str, Any]]


def button_click(body: dict[str, Any]) -> ButtonClick | None:
    """The click a ``block_actions`` payload reports, or None if it is not a message button."""
    actions = body.get("actions") or []
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    ts = container.get("message_ts") or message.get("ts")
    if not actions or not isinstance(channel, str) or not isinstance(ts, str):
        return None
    action = actions[0]
    thread_ts = message.get("thread_ts") or ts
    return ButtonClick(
        action_id=str(action.get("action_id") or ""),
        value=str(action.get("value") or ""),
        user=str((body.get("user") or {}).get("id") or ""),
        channel=channel,
        message_ts=ts,
        thread=Thread(channel, thread_ts),
        message_text=str(message.get("text") or ""),
        message_blocks=list(message.get("blocks") or []),
    )


def thread_context(
    messages: list[dict[str, Any]], before_ts: str, bot_user_id: str | None, limit: int
) -> str:
    """The people's messages of a thread before ``before_ts``, joined, the latest ``limit``
    characters of them (cut at a line start when possible)."""
    texts = []
    for message in messages:
        if message.get("ts") == before_ts or _ts(message.get("ts")) >= _ts(before_ts):
            break
        if message.get("bot_id") or message.get("subtype") not in _WRITTEN_SUBTYPES:
            continue
        if message.get("user") == bot_user_id:
            continue
        text = _MENTION.sub("", str(message.get("text") or "")).strip()
        if text:
            texts.append(text)
    joined = "\n".join(texts)
    if len(joined) <= limit:
        return joined
    tail = joined[-limit:]
    newline = tail.find("\n")
    return tail[newline + 1 :] if 0 <= newline < limit // 2 else tail


def _ts(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        return float("inf")
