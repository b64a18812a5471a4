"""Plain frozen records exchanged between the engine, its ports and the adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

Role = Literal["customer", "bot", "agent"]


class Outcome(StrEnum):
    """How a bot reply was produced."""

    GENERATED = "generated"  # written by the generator and grounded in the evidence
    COPIED = "copied"  # the best retrieved answer, sent as it is
    HANDOFF = "handoff"  # the bot did not answer and handed the conversation to a human


class FlagReason(StrEnum):
    """Why a turn is in the operators' review queue."""

    LOW_CONFIDENCE = "low_confidence"
    GROUNDING_FALLBACK = "grounding_fallback"
    HANDOFF = "handoff"
    THUMBS_DOWN = "thumbs_down"
    NOT_HELPFUL = "not_helpful"


class ConversationState(StrEnum):
    BOT = "bot"  # the bot answers
    HUMAN = "human"  # handed off: the bot stays quiet until an operator hands it back
    CLOSED = "closed"


@dataclass(frozen=True)
class Source:
    """A past exchange or curated answer that a reply used as evidence."""

    source_id: str
    score: float
    kind: Literal["log", "curated"]
    customer_text: str
    agent_reply: str


@dataclass(frozen=True)
class Message:
    """One message of a conversation's history as the engine sees it."""

    role: Role
    text: str


@dataclass(frozen=True)
class Conversation:
    id: str
    channel: str
    state: ConversationState
    created_at: float
    external_ref: str | None = None  # e.g. a Slack thread, or a web client id


@dataclass(frozen=True)
class Turn:
    id: str
    conversation_id: str
    role: Role
    text: str
    created_at: float
    outcome: Outcome | None = None
    confidence: float | None = None
    sources: tuple[Source, ...] = ()
    latency_ms: float | None = None


@dataclass(frozen=True)
class IncomingMessage:
    """A customer's message arriving through any channel."""

    conversation_id: str
    text: str


@dataclass(frozen=True)
class Reply:
    """The engine's answer to one customer message."""

    turn_id: str
    conversation_id: str
    text: str
    outcome: Outcome
    confidence: float
    sources: tuple[Source, ...] = ()
    flags: tuple[FlagReason, ...] = ()

    @property
    def handoff(self) -> bool:
        return self.outcome is Outcome.HANDOFF


@dataclass(frozen=True)
class Rating:
    turn_id: str
    value: Literal["up", "down"]
    comment: str | None = None
    channel: str = "web"


@dataclass(frozen=True)
class GenerationRequest:
    """What the generator is given: the evidence, the conversation so far, the message."""

    customer_text: str
    history: tuple[Message, ...] = ()
    evidence: tuple[Source, ...] = ()
    max_new_tokens: int | None = None


# Streaming events, in the order a client receives them.
@dataclass(frozen=True)
class ReplyDelta:
    """A further piece of the reply text (only text already checked for grounding)."""

    text: str


@dataclass(frozen=True)
class ReplyRetracted:
    """The text streamed so far is withdrawn; the final reply replaces it."""

    reason: FlagReason = FlagReason.GROUNDING_FALLBACK


@dataclass(frozen=True)
class ReplyDone:
    reply: Reply
    extra: dict[str, object] = field(default_factory=dict)


ReplyEvent = ReplyDelta | ReplyRetracted | ReplyDone
