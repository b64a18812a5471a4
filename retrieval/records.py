"""Plain records that flow through ingest and retrieval."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["customer", "agent"]


@dataclass(frozen=True)
class LogMessage:
    role: Role
    text: str


def follows_a_reply(history: Sequence[LogMessage]) -> bool:
    """Whether an agent (or the bot, in exported feedback) has written before in the
    conversation: then a copied or generated reply greets no one again, and "ok I'll check
    the guide, thanks" is a closing remark rather than a question."""
    return any(message.role == "agent" for message in history)


@dataclass(frozen=True)
class Conversation:
    """One historical support conversation as read from a log file (PII not yet scrubbed)."""

    id: str
    messages: tuple[LogMessage, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""  # "path:line" where it was read, for error reports

    def content_hash(self) -> str:
        """Hash of what the conversation says, so re-ingesting the same file adds nothing."""
        payload = json.dumps([[m.role, m.text] for m in self.messages], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ParseIssue:
    """A malformed record that was skipped; ``line`` is 1-based (0 when not line-based)."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class ExchangeEntry:
    """A customer turn (with what preceded it) and the agent reply that followed it.

    This is the unit that is embedded and retrieved. ``source_id`` is stable:
    ``<conversation id>#<turn number>`` for log entries, ``correction:<id>`` for curated ones.
    """

    source_id: str
    conversation_id: str
    turn_index: int
    context: tuple[LogMessage, ...]
    customer_text: str
    agent_reply: str
    kind: Literal["log", "curated"] = "log"

    @property
    def embed_text(self) -> str:
        return query_text(self.context, self.customer_text)


@dataclass(frozen=True)
class RetrievedExchange:
    """A search hit: the past exchange, its similarity score and where it came from."""

    score: float
    source_id: str
    customer_text: str
    agent_reply: str
    kind: Literal["log", "curated"]
    conversation_id: str = ""
    context: tuple[LogMessage, ...] = ()
    support: int = 1  # how many stored exchanges with this same reply matched
    # This reply's share of the similarity-weighted vote of the nearest hits (0 to 1): low
    # when other answers crowd the neighbourhood even though this one scored best.
    vote_share: float = 1.0
    # The index version's answer classifier's probability of this reply (0 to 1); None
    # when the classifier does not know it or the version has none.
    answer_probability: float | None = None
    # How typical the question is of the answered ones (see retrieval.answer_classifier:
    # above 0, closer to some answer's questions than to questions at large). The same for
    # every hit of one search; None when the version has no classifier.
    question_typicality: float | None = None
    # The reply verifier's probability that this reply answers the message searched (see
    # retrieval.verifier); set on the first hit only, None without a verifier.
    verifier_probability: float | None = None
    # A curated answer's own evidence for this message: how many of its questions (the
    # corrected one and those attached) lie at least as near it as the nearest question of
    # any other answer, by similarity alone (no bonus); None for a logged answer.
    nearer_questions: int | None = None


@dataclass(frozen=True)
class Query:
    """What is searched for: the customer's message and the conversation before it.
    Here with the records, not with the search: the jobs and the bot build queries without
    importing FAISS."""

    customer_text: str
    context: tuple[LogMessage, ...] = ()


def query_text(context: Sequence[LogMessage], customer_text: str) -> str:
    """The text embedded for a customer turn; used for stored entries and for queries alike.

    Only the customer's own message is embedded. Appending the previous turns was measured
    on the sample corpus (held-out turns, top-1 answer match): 0.46 with the context
    appended, 0.44 with only the previous agent message, 0.49 without context; the context
    outweighed short new questions ("do you have a physical store?" after a parcel question
    matched parcel answers). The context stays stored with each entry for the generator.
    """
    del context  # not embedded (see above); callers still pass it, entries and queries alike
    return customer_text.strip()
