"""What the web adapter needs from the application: typed keys and the engine's shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from aiohttp import web

from bot.core.types import Conversation, IncomingMessage, Rating, Reply, ReplyEvent, Turn
from bot.web.config import WebConfig
from bot.web.metrics import WebMetrics
from bot.web.ratelimit import RateLimiter


class ChatEngine(Protocol):
    """The part of ``bot.core.engine.ConversationEngine`` that the web routes call."""

    async def start_conversation(
        self, channel: str, external_ref: str | None = None
    ) -> Conversation: ...

    def handle_message(self, message: IncomingMessage) -> AsyncIterator[ReplyEvent]: ...

    async def reply(self, message: IncomingMessage) -> Reply: ...

    async def rate(self, rating: Rating) -> None: ...

    async def request_handoff(self, conversation_id: str, reason: str) -> Reply: ...

    async def conversation(self, conversation_id: str) -> Conversation: ...

    async def history(self, conversation_id: str) -> list[Turn]: ...


class StorageStatus(Protocol):
    """Whether the conversation store can write (``bot.store.health.StorageHealth``)."""

    @property
    def writable(self) -> bool: ...

    @property
    def failing_since(self) -> float | None: ...

    @property
    def failed_writes(self) -> int: ...


ENGINE = web.AppKey("engine", ChatEngine)
STORAGE_STATUS = web.AppKey("storage_status", StorageStatus)
WEB_CONFIG = web.AppKey("web_config", WebConfig)
METRICS = web.AppKey("metrics", WebMetrics)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
# Conversations started by all clients together (bot.web.flood).
NEW_CONVERSATIONS = web.AppKey("new_conversations", RateLimiter)
