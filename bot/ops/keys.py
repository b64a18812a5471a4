"""What the dashboard needs from the application: the engine's review side, typed keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import jinja2
from aiohttp import web

from bot.core.config import EngineConfig
from bot.core.ports import ConversationStore
from bot.core.types import AttachedQuestion, Correction, SuggestedQuestion, Turn
from bot.ops.config import OpsConfig
from bot.ops.database import DashboardDatabase
from bot.ops.login_limits import LoginLimits
from bot.ops.login_log import LoginLog
from bot.ops.storage import Session


@runtime_checkable
class ReviewEngine(Protocol):
    """The part of ``bot.core.engine.ConversationEngine`` that operators act through."""

    store: ConversationStore
    config: EngineConfig

    @property
    def generating(self) -> bool: ...  # False: replies copy the best retrieved answer

    async def history(self, conversation_id: str) -> list[Turn]: ...

    async def correct(
        self, turn_id: str, answer: str, *, created_by: str, question: str | None = None
    ) -> Correction: ...

    async def edit_correction(
        self, correction_id: int, answer: str, *, edited_by: str, question: str | None = None
    ) -> Correction: ...

    async def withdraw_correction(self, correction_id: int, *, withdrawn_by: str) -> Correction: ...

    async def suggest_questions(
        self, correction_id: int, limit: int = 20
    ) -> list[SuggestedQuestion]: ...

    async def attach_questions(
        self, correction_id: int, questions: Sequence[str], *, attached_by: str
    ) -> list[AttachedQuestion]: ...

    async def hand_back(self, conversation_id: str) -> None: ...

    async def add_agent_turn(self, conversation_id: str, text: str) -> Turn: ...


PREFIX = "/ops"  # where the dashboard is mounted; its session cookie is scoped to it

OPS_CONFIG = web.AppKey("ops_config", OpsConfig)
TEMPLATES = web.AppKey("ops_templates", jinja2.Environment)
LOGIN_LIMITS = web.AppKey("ops_login_limits", LoginLimits)
LOGIN_LOG = web.AppKey("ops_login_log", LoginLog)
# Set by the start-up context once the engine exists.
DATABASE = web.AppKey("ops_database", DashboardDatabase)
REVIEW_ENGINE = web.AppKey("ops_engine", ReviewEngine)
# The logged-in operator of a request.
SESSION = web.RequestKey("ops_session", Session)
