"""The ports of the engine: what it needs from retrieval, generation and storage.

All are async so that an adapter can run blocking work (FAISS, a model, SQLite) in its own
worker, and so that PostgreSQL (psycopg async) or a remote inference server fit as they are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from bot.core.config import HandoffPolicy
from bot.core.types import (
    AttachedQuestion,
    Conversation,
    ConversationState,
    Correction,
    CustomerDetail,
    FlagReason,
    FlagStatus,
    GenerationRequest,
    Message,
    Outcome,
    Rating,
    ScrubbedMessage,
    Source,
    StoreCounts,
    SuggestedQuestion,
    Turn,
)


class Scrubber(Protocol):
    """Removes personal data from text before it is stored, searched or shown to others."""

    async def scrub(self, text: str) -> str:
        """``text`` without e-mails, phone, card and account numbers or people's names."""
        ...

    async def scrub_names(self, text: str) -> str:
        """``text`` without people's names only: an operator's answer may rightly hold the
        shop's own phone number or address."""
        ...

    async def scrub_message(self, text: str) -> ScrubbedMessage:
        """A customer's own message scrubbed as :meth:`scrub` does, with the e-mails, phone
        numbers and names taken out (never card numbers or IBANs: a support tool should not
        keep them)."""
        ...


class Retriever(Protocol):
    async def retrieve(
        self, history: Sequence[Message], customer_text: str, k: int
    ) -> Sequence[Source]:
        """The ``k`` best distinct answers for the message, best first."""
        ...


class AnswerCurator(Protocol):
    async def add_curated(
        self, source_id: str, question: str, answer: str, context: Sequence[Message] = ()
    ) -> None:
        """Serve ``answer`` for questions like ``question`` from now on, preferred over the
        logs; an answer with the same ``source_id`` is replaced."""
        ...

    async def remove_curated(self, source_id: str) -> None:
        """Stop serving the answer with ``source_id`` at once; nothing when there is none."""
        ...


class QuestionFinder(Protocol):
    async def similar_questions(
        self,
        queries: Sequence[str],
        wrong_answer: str | None,
        candidates: Sequence[str],
        limit: int,
        *,
        corrected_answer: str | None = None,
        answered_otherwise: Sequence[str] = (),
    ) -> Sequence[SuggestedQuestion]:
        """Past customer questions that may ask what ``queries[0]`` (the corrected
        question) asks, best first, at most ``limit``: logged ones near any of ``queries``
        from the knowledge base, ``candidates`` (live customer turns answered with
        ``wrong_answer``) and ``answered_otherwise`` (live turns answered with another
        answer the corrected question retrieved), ranked together by how well they fit
        the correction whose answer is ``corrected_answer``. Hits whose answer is
        ``wrong_answer`` say so."""
        ...


class HandoffPolicySource(Protocol):
    """Where the engine reads, for each message, the hand-off policy served now. The
    server's changes while it runs: an operator moves the hand-off target, another
    embedder (with its own fitted threshold) goes live (``bot.handoff``)."""

    def current(self) -> HandoffPolicy: ...


@runtime_checkable
class Versioned(Protocol):
    """Optional for a retriever or generator: the version it serves, recorded on each turn."""

    @property
    def version(self) -> str | None: ...


@runtime_checkable
class Switchable(Protocol):
    """Optional for a generator: whether it can generate now. The server's generator follows
    the live adapter and holds none while no adapter is live or the live one is not served;
    the engine then copies the best retrieved answer, and generates again once one is
    loaded, without anyone changing the engine."""

    @property
    def loaded(self) -> bool: ...


class Generator(Protocol):
    def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        """Yield the reply as text pieces; raises ModelUnavailable when it cannot answer."""
        ...


class ConversationStore(Protocol):
    async def create_conversation(
        self, channel: str, external_ref: str | None = None
    ) -> Conversation:
        """A new conversation, or the existing one with this ``(channel, external_ref)``."""
        ...

    async def get_conversation(self, conversation_id: str) -> Conversation:
        """Raises ConversationNotFound."""
        ...

    async def set_state(self, conversation_id: str, state: ConversationState) -> None: ...

    async def add_turn(
        self,
        conversation_id: str,
        role: str,
        text: str,
        *,
        outcome: Outcome | None = None,
        confidence: float | None = None,
        sources: Sequence[Source] = (),
        latency_ms: float | None = None,
        index_version: str | None = None,
        model_version: str | None = None,
        details: Sequence[CustomerDetail] = (),
    ) -> Turn:
        """Append a turn, with the ``details`` scrubbed from it kept apart for operators;
        raises ConversationNotFound."""
        ...

    async def get_turn(self, turn_id: str) -> Turn:
        """Raises TurnNotFound."""
        ...

    async def list_turns(self, conversation_id: str) -> list[Turn]: ...

    async def add_rating(self, rating: Rating) -> None:
        """Raises TurnNotFound. A second rating of the same turn replaces the first."""
        ...

    async def add_flag(self, turn_id: str, reason: FlagReason, detail: str = "") -> None:
        """Raises TurnNotFound. An open flag with the same reason on the turn is kept as it
        is rather than duplicated."""
        ...

    async def resolve_turn_flags(self, turn_id: str, status: FlagStatus, resolved_by: str) -> int:
        """Resolve every open flag of a turn; return how many."""
        ...

    async def add_correction(
        self, question: str, answer: str, *, created_by: str, turn_id: str | None = None
    ) -> Correction:
        """Raises TurnNotFound when ``turn_id`` is given and unknown."""
        ...

    async def get_correction(self, correction_id: int) -> Correction:
        """Raises CorrectionNotFound."""
        ...

    async def list_corrections(self, limit: int = 100, offset: int = 0) -> list[Correction]:
        """Newest first, withdrawn ones included."""
        ...

    async def edit_correction(
        self, correction_id: int, question: str, answer: str, *, edited_by: str
    ) -> Correction:
        """Replace the question and answer of a correction not withdrawn; the correction as
        it is now. Raises CorrectionNotFound, InvalidMessage when it is withdrawn."""
        ...

    async def withdraw_correction(self, correction_id: int, *, withdrawn_by: str) -> Correction:
        """Mark the correction withdrawn (once: a second call keeps the first's who and
        when); the correction as it is now. Raises CorrectionNotFound."""
        ...

    async def attach_questions(
        self, correction_id: int, questions: Sequence[str], *, attached_by: str
    ) -> list[AttachedQuestion]:
        """Attach ``questions`` to a correction not withdrawn, after those it has (one
        already attached is skipped); return the newly attached. Raises
        CorrectionNotFound, InvalidMessage when it is withdrawn."""
        ...

    async def attached_questions(self, correction_id: int) -> list[AttachedQuestion]:
        """The questions attached to a correction, in the order attached."""
        ...

    async def corrections_asking(self, question: str) -> list[Correction]:
        """The corrections not withdrawn whose question, or an attached one, is
        ``question``."""
        ...

    async def questions_answered_with(self, reply: str, limit: int) -> list[str]:
        """The customer messages the bot answered with exactly ``reply``, newest first."""
        ...

    async def forget_customer_details(self, older_than_s: float) -> int:
        """Delete the customer details kept longer than ``older_than_s`` seconds (0: all);
        return how many."""
        ...

    async def counts(self) -> StoreCounts: ...


class FlagGate(Protocol):
    """Decides whether one more flag may enter the review queue.

    A flood of hand-offs would bury the real ones: an adapter that knows who is sending
    (the web adapter knows the client) refuses flags beyond its caps. A refused flag is
    not stored; the reply itself is unchanged.
    """

    async def admit(self, reason: FlagReason) -> bool: ...
