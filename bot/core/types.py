"""Plain frozen records exchanged between the engine, its ports and the adapters."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from bot.core.certainty import Certainty

Role = Literal["customer", "bot", "agent"]


class Outcome(StrEnum):
    """How a bot reply was produced."""

    GENERATED = "generated"  # written by the generator and grounded in the evidence
    COPIED = "copied"  # the best retrieved answer, sent as it is
    HANDOFF = "handoff"  # the bot did not answer and handed the conversation to a human
    # a greeting, thanks or goodbye answered with its set reply (retrieval.small_talk)
    SMALL_TALK = "small_talk"


class FlagReason(StrEnum):
    """Why a turn is in the operators' review queue."""

    LOW_CONFIDENCE = "low_confidence"
    GROUNDING_FALLBACK = "grounding_fallback"
    HANDOFF = "handoff"
    THUMBS_DOWN = "thumbs_down"
    NOT_HELPFUL = "not_helpful"
    # Sent, with "low" certainty (bot.core.certainty): the customer was told a person can
    # check, so a person should; it waits behind the others in the queue.
    UNSURE = "unsure"


# The detail of the HANDOFF flag when the customer asked for a person, by the widget's or
# Slack's button or in words ("can I talk to a human?"); the dashboard shows it in words.
CUSTOMER_REQUEST = "customer_request"
# The detail of the HANDOFF flag when the customer, after asking something, wrote only an
# order number, e-mail or phone number (retrieval.details_only): the bot cannot use them.
CUSTOMER_DETAILS = "customer_details"


class FlagStatus(StrEnum):
    """Where a flag is in the operators' review: open until someone decides."""

    OPEN = "open"
    APPROVED = "approved"  # the reply was fine as it was
    CORRECTED = "corrected"  # an operator wrote a correction (a curated answer)
    REJECTED = "rejected"  # the reply was wrong, no correction written
    RESOLVED = "resolved"  # handled otherwise (e.g. the operator answered the customer)


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
    support: int = 1  # how many stored exchanges gave this same answer
    vote_share: float = 1.0  # its share of the similarity-weighted vote of the nearest hits
    answer_probability: float | None = None  # the answer classifier's, None: not known
    question_typicality: float | None = None  # of the question searched; None: not known
    verifier_probability: float | None = None  # the reply verifier's, None: no verifier
    # A curated answer's questions at least as near as any other answer's (by similarity,
    # no bonus); None: a logged answer, or a turn's source read back from the store.
    nearer_questions: int | None = None

    @property
    def shown_score(self) -> float:
        """``score`` as customers and operators see it: a closeness from 0 to 1.

        ``score`` ranks: it adds the operator's bonus to a curated answer (1.05 for the
        corrected question itself) and can be a negative similarity; sources are listed
        in its order, and only the figure shown is held within [0, 1].
        """
        return float(min(1.0, max(0.0, self.score)))


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
    # Which index and model produced a bot turn, to compare versions on rated turns.
    index_version: str | None = None
    model_version: str | None = None


@dataclass(frozen=True)
class CustomerDetail:
    """A piece of personal data scrubbed from a customer's own message (``kind``: email,
    phone or name), as written. Kept apart from the turn, for that conversation's
    operators only, so that a person taking over can find the customer's account."""

    kind: str
    value: str


@dataclass(frozen=True)
class ScrubbedMessage:
    """A customer's message as stored, and the details scrubbed from it for operators."""

    text: str
    details: tuple[CustomerDetail, ...] = ()


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
    # What a customer may be told of the confidence; None for a hand-off (no answer).
    certainty: Certainty | None = None
    # A hand-off the customer asked for (button or words), not one the bot decided on.
    asked_for_person: bool = False

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
class Flag:
    """A turn in the operators' review queue."""

    id: int
    turn_id: str
    conversation_id: str
    channel: str
    reason: FlagReason
    detail: str
    status: FlagStatus
    created_at: float
    resolved_at: float | None = None
    resolved_by: str | None = None


@dataclass(frozen=True)
class Correction:
    """An operator's answer to a question, served by retrieval as a curated answer."""

    id: int
    source_id: str  # "correction:<id>", the curated entry's id in retrieval
    question: str
    answer: str
    created_by: str
    created_at: float
    turn_id: str | None = None  # the bot turn it corrects, if any
    edited_by: str | None = None  # who last changed its question or answer, and when
    edited_at: float | None = None
    withdrawn_by: str | None = None  # withdrawn: no longer served nor learned from
    withdrawn_at: float | None = None

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None


@dataclass(frozen=True)
class AttachedQuestion:
    """Another customer question an operator said a correction answers too: served as one
    more curated entry with the correction's answer, so one correction covers a topic."""

    correction_id: int
    position: int  # 1, 2, ... in the order attached
    question: str
    attached_by: str
    attached_at: float

    @property
    def source_id(self) -> str:
        """The curated entry's id in retrieval: ``correction:<id>:<position>``."""
        return f"correction:{self.correction_id}:{self.position}"


@dataclass(frozen=True)
class SuggestedQuestion:
    """A past customer message that may ask what a correction answers (scrubbed as stored;
    for operators' eyes only)."""

    text: str
    score: float  # cosine similarity to the corrected question (lists rank by fit, not this)
    origin: str  # "log" (an ingested exchange) or "conversation" (a live customer turn)
    got_wrong_answer: bool  # it retrieves, or was answered with, the corrected reply
    # Alike enough to be shown as "likely the same question", the group an operator may
    # select in one click (the rule and its measured precision: retrieval/suggestions.py).
    likely_same: bool = False


@dataclass(frozen=True)
class StoreCounts:
    """Totals for metrics and the dashboard; every known key is present (zero if none)."""

    conversations_by_state: dict[str, int]
    turns_by_role: dict[str, int]
    replies_by_outcome: dict[str, int]
    ratings_by_value: dict[str, int]
    open_flags_by_reason: dict[str, int]
    corrections: int  # in use (withdrawn ones are not counted), whether asked for yet or not


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
    """The text streamed so far is withdrawn; the final reply replaces it.

    ``reason`` is None when the generator failed part-way (nothing wrong with the text, but
    it is unfinished).
    """

    reason: FlagReason | None = FlagReason.GROUNDING_FALLBACK


@dataclass(frozen=True)
class ReplyDone:
    reply: Reply


ReplyEvent = ReplyDelta | ReplyRetracted | ReplyDone
