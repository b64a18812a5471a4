"""The ports of the engine: what it needs from retrieval, generation and storage.

All are async so that an adapter can run blocking work (FAISS, a model, SQLite) in its own
worker, and so that PostgreSQL (psycopg async) or a remote inference server fit as they are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from bot.core.types import (
    Conversation,
    ConversationState,
    FlagReason,
    GenerationRequest,
    Message,
    Outcome,
    Rating,
    Source,
    Turn,
)


class Retriever(Protocol):
    async def retrieve(
        self, history: Sequence[Message], customer_text: str, k: int
    ) -> Sequence[Source]:
        """The ``k`` best distinct answers for the message, best first."""
        ...


class Generator(Protocol):
    def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        """Yield the reply as text pieces; raises ModelUnavailable when it cannot answer."""
        ...


class ConversationStore(Protocol):
    async def create_conversation(
        self, channel: str, external_ref: str | None = None
    ) -> Conversation: ...

    async def get_conversation(self, conversation_id: str) -> Conversation:
        """Raises ConversationNotFound."""
        ...

    async def find_conversation(self, channel: str, external_ref: str) -> Conversation | None: ...

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
    ) -> Turn: ...

    async def get_turn(self, turn_id: str) -> Turn:
        """Raises TurnNotFound."""
        ...

    async def list_turns(self, conversation_id: str) -> list[Turn]: ...

    async def add_rating(self, rating: Rating) -> None:
        """Raises TurnNotFound. A second rating of the same turn replaces the first."""
        ...

    async def add_flag(self, turn_id: str, reason: FlagReason, detail: str = "") -> None: ...
