"""Block Kit messages the bot posts: replies with their buttons, progress, hand-off posts.

Builders return plain dicts (the JSON Slack takes); the action ids are the contract with the
listeners in :mod:`bot.slack.listeners`. Text from the engine is escaped for mrkdwn, so a
reply can never ping ``@channel`` or forge a link.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.core.types import FlagReason, Reply

Block = dict[str, Any]

RATE_UP = "supportbot_rate_up"
RATE_DOWN = "supportbot_rate_down"
REQUEST_HANDOFF = "supportbot_handoff"
HAND_BACK = "supportbot_hand_back"
OPEN_THREAD = "supportbot_open_thread"
REPLY_ACTIONS_BLOCK = "supportbot_reply_actions"

_SECTION_LIMIT = 3000  # characters of text in one section block
_FALLBACK_LIMIT = 3000  # characters of the notification text we send with blocks
_QUOTE_LIMIT = 500


def escape(text: str) -> str:
    """``text`` safe to put in mrkdwn: &, < and > escaped (no mentions, no forged links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fallback_text(text: str) -> str:
    """The plain ``text`` of a message with blocks (notifications, screen readers)."""
    return text if len(text) <= _FALLBACK_LIMIT else text[: _FALLBACK_LIMIT - 1] + "…"


def text_sections(text: str, *, markup: bool = False) -> list[Block]:
    """``text`` as mrkdwn sections, split at line or word ends to fit Slack's limit.

    ``markup``: the text is already Slack markup (an operator's message, with its links and
    mentions) and is not escaped.
    """
    escaped = text if markup else escape(text)
    sections: list[Block] = []
    while escaped:
        piece = escaped[:_SECTION_LIMIT]
        if len(escaped) > _SECTION_LIMIT:
            cut = max(piece.rfind("\n"), piece.rfind(" "))
            piece = piece[:cut] if cut > _SECTION_LIMIT // 2 else piece
            # Never split an escape sequence such as &amp; in two.
            amp = piece.rfind("&")
            if amp > len(piece) - 5 and ";" not in piece[amp:]:
                piece = piece[:amp]
        sections.append({"type": "section", "text": {"type": "mrkdwn", "text": piece}})
        escaped = escaped[len(piece) :].lstrip("\n ")
    return sections


def _button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style is not None:
        button["style"] = style
    return button


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def progress_blocks(text: str) -> list[Block]:
    """A reply being written: its text so far, no buttons yet."""
    return text_sections(text)


def reply_blocks(reply: Reply) -> list[Block]:
    """A finished reply: helpful / not helpful (value: the turn id) and talk to a human
    (value: the conversation id). A hand-off message carries no buttons: a person is coming.
    """
    blocks = text_sections(reply.text)
    if reply.handoff:
        blocks.append(
            _context(":busts_in_silhouette: A member of our support team will reply here.")
        )
        return blocks
    blocks.append(
        {
            "type": "actions",
            "block_id": REPLY_ACTIONS_BLOCK,
            "elements": [
                _button(":+1: Helpful", RATE_UP, reply.turn_id),
                _button(":-1: Not helpful", RATE_DOWN, reply.turn_id),
                _button("Talk to a human", REQUEST_HANDOFF, reply.conversation_id),
            ],
        }
    )
    return blocks


def rated_blocks(blocks: Sequence[Block], value: str) -> list[Block]:
    """``blocks`` of a reply after a rating: the rating buttons give way to a thank-you;
    "talk to a human" stays."""
    thanks = (
        "Thanks, glad it helped!"
        if value == "up"
        else "Thanks for telling us. You can ask a person with *Talk to a human*."
    )
    updated: list[Block] = []
    for block in blocks:
        if block.get("block_id") != REPLY_ACTIONS_BLOCK:
            updated.append(block)
            continue
        rest = [
            e for e in block.get("elements", []) if e.get("action_id") not in (RATE_UP, RATE_DOWN)
        ]
        updated.append(_context(thanks))
        if rest:
            updated.append({**block, "elements": rest})
    return updated


def without_handoff_button(blocks: Sequence[Block]) -> list[Block]:
    """``blocks`` with the "talk to a human" button removed (it was used)."""
    updated: list[Block] = []
    for block in blocks:
        if block.get("block_id") == REPLY_ACTIONS_BLOCK:
            rest = [e for e in block.get("elements", []) if e.get("action_id") != REQUEST_HANDOFF]
            if not rest:
                continue
            block = {**block, "elements": rest}
        updated.append(block)
    return updated


def handoff_reason(reply: Reply) -> str:
    """Why ``reply`` handed off, for the operators' post."""
    if reply.asked_for_person:
        return "the customer asked for a person"
    if FlagReason.GROUNDING_FALLBACK in reply.flags:
        return "the bot's answer was not supported by past answers"
    # The bot's other HANDOFF flag: the answer was an action only a person can take
    # ("I've cancelled it for you"). Its post said "the customer asked for a person".
    if FlagReason.HANDOFF in reply.flags:
        return "the answer needs a person to act on the order or account"
    return "the bot was not confident it had the right answer"


def handoff_post_blocks(
    *,
    reason: str,
    customer: str | None,
    channel: str,
    permalink: str | None,
    last_message: str | None,
    conversation_id: str,
    direct_message: bool,
) -> list[Block]:
    """The post in the operators' channel: who, why, a link and a hand-back button."""
    who = f"<@{customer}>" if customer else "A customer"
    where = "in a direct message" if direct_message else f"in <#{channel}>"
    blocks: list[Block] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f":raising_hand: *{who} needs a person* {where}: {escape(reason)}.",
            },
        }
    ]
    if last_message:
        quote = (
            last_message if len(last_message) <= _QUOTE_LIMIT else last_message[:_QUOTE_LIMIT] + "…"
        )
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "> " + escape(quote).replace("\n", "\n> ")},
            }
        )
    how = (
        "Reply in this thread: the bot passes your replies on to the customer."
        if direct_message
        else "Reply in the customer's thread (or in this one: the bot passes it on)."
    )
    blocks.append(
        _context(f"{how} The bot stays quiet until someone hands it back (or types `!handback`).")
    )
    elements: list[Block] = []
    if permalink and not direct_message:
        elements.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Open the thread"},
                "action_id": OPEN_THREAD,
                "url": permalink,
            }
        )
    elements.append(_button("Hand back to the bot", HAND_BACK, conversation_id))
    blocks.append({"type": "actions", "elements": elements})
    return blocks


def handoff_post_text(reason: str, permalink: str | None) -> str:
    link = f" {permalink}" if permalink else ""
    return f"A customer needs a person ({reason}).{link}"


def relayed_blocks(text: str, operator: str) -> list[Block]:
    """An operator's reply passed on to the customer's thread by the bot."""
    return [*text_sections(text, markup=True), _context(f"<@{operator}> from our support team")]
