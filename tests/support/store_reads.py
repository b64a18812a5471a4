"""Reads and one write of the conversation store that only the tests make.

The product reads flags and ratings through the dashboard's own queries (``bot.ops``) and
resolves flags a turn at a time (``resolve_turn_flags``); these look at what a test's
actions stored, over the store's own tables.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bot.core.types import Conversation, Flag, FlagReason, FlagStatus, Rating
from bot.store.conversations import ConversationDatabase
from bot.store.records import conversation_of, flag_of, rating_of
from bot.store.tables import conversations, flags, ratings

# A flag with its conversation's channel, as flag_of reads it.
_FLAGS = sa.select(flags, conversations.c.channel).join_from(flags, conversations)


async def _all(store: ConversationDatabase, statement: sa.Executable) -> list[Any]:
    return await store.database.read(lambda conn: list(conn.execute(statement).mappings()))


async def find_conversation(
    store: ConversationDatabase, channel: str, external_ref: str
) -> Conversation | None:
    c = conversations.c
    query = sa.select(conversations).where(c.channel == channel, c.external_ref == external_ref)
    rows = await _all(store, query)
    return conversation_of(rows[0]) if rows else None


async def get_rating(store: ConversationDatabase, turn_id: str) -> Rating | None:
    rows = await _all(store, sa.select(ratings).where(ratings.c.turn_id == turn_id))
    return rating_of(rows[0]) if rows else None


async def list_flags(
    store: ConversationDatabase,
    status: FlagStatus | None = FlagStatus.OPEN,
    *,
    reason: FlagReason | None = None,
    channel: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
) -> list[Flag]:
    """Flags oldest first, filtered; ``since`` inclusive, ``until`` exclusive; None for
    ``status`` lists every status."""
    f = flags.c
    query = _FLAGS.order_by(f.created_at, f.id).limit(limit)
    if status is not None:
        query = query.where(f.status == FlagStatus(status).value)
    if reason is not None:
        query = query.where(f.reason == FlagReason(reason).value)
    if channel is not None:
        query = query.where(conversations.c.channel == channel)
    if since is not None:
        query = query.where(f.created_at >= since)
    if until is not None:
        query = query.where(f.created_at < until)
    return [flag_of(row) for row in await _all(store, query)]


async def resolve_flag(
    store: ConversationDatabase, flag_id: int, status: FlagStatus, resolved_by: str
) -> Flag:
    """Set one flag's review outcome, as an operator's action would. Raises LookupError."""
    resolved = (
        flags.update()
        .where(flags.c.id == flag_id)
        .values(
            status=FlagStatus(status).value, resolved_at=store._clock(), resolved_by=resolved_by
        )
    )

    def resolve(conn: sa.Connection) -> Flag:
        if conn.execute(resolved).rowcount == 0:
            raise LookupError(f"no flag {flag_id}")
        return flag_of(conn.execute(_FLAGS.where(flags.c.id == flag_id)).mappings().one())

    return await store.database.write(resolve)
