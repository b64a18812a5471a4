"""The conversation store behind the ``ConversationStore`` port (:mod:`bot.core.ports`):
in the home's SQLite file on one box, in PostgreSQL when several server replicas share it.

The same statements run on both (:mod:`bot.store.tables`), through an asyncio engine, so
no query blocks the event loop. Where two writers could race, the store holds what they
race on: SQLite has one writer at a time (every transaction begins IMMEDIATE), PostgreSQL
locks a conversation's row while a turn is numbered and a correction's while questions are
attached to it, and the ``(channel, external_ref)`` key makes two replicas starting the
same Slack thread at once find one conversation.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.core.errors import (
    ConversationNotFound,
    CorrectionNotFound,
    FlagNotFound,
    InvalidMessage,
    TurnNotFound,
)
from bot.core.types import (
    AttachedQuestion,
    Conversation,
    ConversationState,
    Correction,
    Flag,
    FlagReason,
    FlagStatus,
    Outcome,
    Rating,
    Source,
    StoreCounts,
    Turn,
)
from bot.store.health import StorageHealth
from bot.store.records import (
    COUNTED_GROUPS,
    TEXT_COLUMNS,
    StoredText,
    attached_question_of,
    conversation_of,
    correction_of,
    correction_source_id,
    flag_of,
    new_questions,
    new_turn,
    rating_of,
    store_counts,
    stored_text_of,
    turn_of,
    turn_values,
)
from bot.store.tables import (
    HISTORY,
    OPEN,
    OPEN_LITERALLY,
    conversations,
    correction_questions,
    corrections,
    flags,
    ratings,
    turns,
)
from retrieval.database import (
    async_engine,
    describe,
    insert,
    reading_async,
    sqlite_url,
    upgrade_database,
)

# A flag as the store returns it: its row and its conversation's channel.
_FLAGS = sa.select(flags, conversations.c.channel).join_from(flags, conversations)


class ConversationDatabase:
    """Conversations, turns, ratings, flags and corrections in the database at
    ``database``: a SQLite file (a path) or a ``sqlite:///`` or ``postgresql://`` URL.

    Nothing is opened by the constructor: :meth:`open` (or the first call) migrates the
    tables, so that a bad database fails at start-up; :meth:`aclose` closes. A write
    refused because the disk is full raises StorageUnavailable, tracked by :attr:`health`.
    """

    def __init__(
        self,
        database: Path | str,
        *,
        pool_size: int = 10,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = sqlite_url(database) if isinstance(database, Path) else database
        sqlite = sa.make_url(self.url).get_backend_name() == "sqlite"
        # SQLite: one connection, as it has one writer at a time anyway; coroutines queue
        # for it, as they queued for the thread that held it before.
        self.engine: AsyncEngine = async_engine(self.url, pool_size=1 if sqlite else pool_size)
        self._clock = clock
        self._migrated = False
        self._migrating = asyncio.Lock()
        self._closed = False
        self.health = StorageHealth(f"conversation store {describe(self.url)}")

    # -- lifetime ----------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect and migrate now, so that a bad database fails at start-up."""
        async with self._migrating:
            if self._migrated:
                return
            with self.health.refusing_when_full():
                await asyncio.to_thread(upgrade_database, self.url, HISTORY)
            self._migrated = True

    async def aclose(self) -> None:
        """Close the connections; idempotent."""
        self._closed = True
        await self.engine.dispose()

    @asynccontextmanager
    async def _transaction(self, *, writes: bool = False) -> AsyncIterator[AsyncConnection]:
        """One transaction, committed when the block ends; ``writes`` says that it wrote,
        so that its success tells :attr:`health` there is room again (a read succeeds on a
        full disk and so tells nothing). Raises RuntimeError once closed."""
        if self._closed:
            raise RuntimeError("conversation store is closed")
        if not self._migrated:
            await self.open()
        with self.health.refusing_when_full():
            async with self.engine.begin() as conn:
                yield conn
        if writes:
            self.health.wrote()

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that only reads: its snapshot at once, behind no writer."""
        if self._closed:
            raise RuntimeError("conversation store is closed")
        if not self._migrated:
            await self.open()
        async with reading_async(self.engine) as conn:
            yield conn

    async def _one(self, statement: sa.Select[Any]) -> RowMapping | None:
        async with self._reading() as conn:
            row: RowMapping | None = (await conn.execute(statement)).mappings().first()
            return row

    async def _all(self, statement: sa.Select[Any]) -> Sequence[RowMapping]:
        async with self._reading() as conn:
            rows: Sequence[RowMapping] = (await conn.execute(statement)).mappings().all()
            return rows

    # -- conversations -----------------------------------------------------------------------
    async def create_conversation(
        self, channel: str, external_ref: str | None = None
    ) -> Conversation:
        conversation_id = uuid.uuid4().hex
        now = self._clock()
        new = insert(self.engine.dialect, conversations).values(
            id=conversation_id,
            channel=channel,
            external_ref=external_ref,
            state=ConversationState.BOT.value,
            created_at=now,
            updated_at=now,
        )
        async with self._transaction(writes=True) as conn:
            # Several processes may start the same external conversation (a Slack thread)
            # at once: one row wins and every one of them reads it back.
            await conn.execute(
                new.on_conflict_do_nothing(index_elements=["channel", "external_ref"])
            )
            if external_ref is None:
                return Conversation(conversation_id, channel, ConversationState.BOT, now)
            row = (await conn.execute(_by_ref(channel, external_ref))).mappings().one()
        return conversation_of(row)

    async def get_conversation(self, conversation_id: str) -> Conversation:
        row = await self._one(_conversation(conversation_id))
        if row is None:
            raise ConversationNotFound(conversation_id)
        return conversation_of(row)

    async def find_conversation(self, channel: str, external_ref: str) -> Conversation | None:
        row = await self._one(_by_ref(channel, external_ref))
        return None if row is None else conversation_of(row)

    async def set_state(self, conversation_id: str, state: ConversationState) -> None:
        changed = (
            conversations.update()
            .where(conversations.c.id == conversation_id)
            .values(state=ConversationState(state).value, updated_at=self._clock())
        )
        async with self._transaction(writes=True) as conn:
            if (await conn.execute(changed)).rowcount == 0:
                raise ConversationNotFound(conversation_id)

    # -- turns -------------------------------------------------------------------------------
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
    ) -> Turn:
        turn = new_turn(
            conversation_id,
            role,
            text,
            self._clock(),
            outcome=outcome,
            confidence=confidence,
            sources=sources,
            latency_ms=latency_ms,
            index_version=index_version,
            model_version=model_version,
        )
        t = turns.c
        last = sa.select(sa.func.coalesce(sa.func.max(t.position), 0)).where(
            t.conversation_id == conversation_id
        )
        async with self._transaction(writes=True) as conn:
            # The conversation held (PostgreSQL's row lock, SQLite's one writer): turns are
            # numbered one at a time even when replicas add them at once.
            locked = _conversation(conversation_id).with_for_update()
            if (await conn.execute(locked)).first() is None:
                raise ConversationNotFound(conversation_id)
            position = int(await conn.scalar(last) or 0) + 1
            await conn.execute(turns.insert().values(position=position, **turn_values(turn)))
            await conn.execute(
                conversations.update()
                .where(conversations.c.id == conversation_id)
                .values(updated_at=turn.created_at)
            )
        return turn

    async def get_turn(self, turn_id: str) -> Turn:
        row = await self._one(sa.select(turns).where(turns.c.id == turn_id))
        if row is None:
            raise TurnNotFound(turn_id)
        return turn_of(row)

    async def list_turns(self, conversation_id: str) -> list[Turn]:
        t = turns.c
        rows = await self._all(
            sa.select(turns).where(t.conversation_id == conversation_id).order_by(t.position)
        )
        return [turn_of(row) for row in rows]

    # -- ratings -----------------------------------------------------------------------------
    async def add_rating(self, rating: Rating) -> None:
        """Raises TurnNotFound; a second rating of a turn replaces the first."""
        new = insert(self.engine.dialect, ratings).values(
            turn_id=rating.turn_id,
            value=rating.value,
            comment=rating.comment,
            channel=rating.channel,
            created_at=self._clock(),
        )
        replaced = {c: new.excluded[c] for c in ("value", "comment", "channel", "created_at")}
        async with self._transaction(writes=True) as conn:
            await _require_turn(conn, rating.turn_id)
            await conn.execute(new.on_conflict_do_update(index_elements=["turn_id"], set_=replaced))

    async def get_rating(self, turn_id: str) -> Rating | None:
        row = await self._one(sa.select(ratings).where(ratings.c.turn_id == turn_id))
        return None if row is None else rating_of(row)

    # -- flags -------------------------------------------------------------------------------
    async def add_flag(self, turn_id: str, reason: FlagReason, detail: str = "") -> None:
        """Queue a turn for review; the same open flag is not queued twice."""
        async with self._transaction(writes=True) as conn:
            turn = await _require_turn(conn, turn_id)
            new = insert(self.engine.dialect, flags).values(
                turn_id=turn_id,
                conversation_id=turn["conversation_id"],
                reason=FlagReason(reason).value,
                detail=detail,
                status=FlagStatus.OPEN.value,
                created_at=self._clock(),
            )
            await conn.execute(
                new.on_conflict_do_nothing(
                    index_elements=["turn_id", "reason"], index_where=OPEN_LITERALLY
                )
            )

    async def list_flags(
        self,
        status: FlagStatus | None = FlagStatus.OPEN,
        *,
        reason: FlagReason | None = None,
        channel: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[Flag]:
        """Flags oldest first, filtered; ``since`` inclusive, ``until`` exclusive."""
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
        return [flag_of(row) for row in await self._all(query)]

    async def get_flag(self, flag_id: int) -> Flag:
        row = await self._one(_FLAGS.where(flags.c.id == flag_id))
        if row is None:
            raise FlagNotFound(str(flag_id))
        return flag_of(row)

    async def resolve_flag(self, flag_id: int, status: FlagStatus, resolved_by: str) -> Flag:
        """Set a flag's review outcome (any status; OPEN reopens it). Raises FlagNotFound."""
        status = FlagStatus(status)
        reopened = status is FlagStatus.OPEN
        resolved = (
            flags.update()
            .where(flags.c.id == flag_id)
            .values(
                status=status.value,
                resolved_at=None if reopened else self._clock(),
                resolved_by=None if reopened else resolved_by,
            )
        )
        async with self._transaction(writes=True) as conn:
            if (await conn.execute(resolved)).rowcount == 0:
                raise FlagNotFound(str(flag_id))
            row = (await conn.execute(_FLAGS.where(flags.c.id == flag_id))).mappings().one()
        return flag_of(row)

    async def resolve_turn_flags(self, turn_id: str, status: FlagStatus, resolved_by: str) -> int:
        status = FlagStatus(status)
        if status is FlagStatus.OPEN:
            raise ValueError("resolve_turn_flags needs a closing status, not OPEN")
        resolved = (
            flags.update()
            .where(flags.c.turn_id == turn_id, OPEN)
            .values(status=status.value, resolved_at=self._clock(), resolved_by=resolved_by)
        )
        async with self._transaction(writes=True) as conn:
            return int((await conn.execute(resolved)).rowcount)

    # -- corrections -------------------------------------------------------------------------
    async def add_correction(
        self, question: str, answer: str, *, created_by: str, turn_id: str | None = None
    ) -> Correction:
        now = self._clock()
        new = corrections.insert().values(
            turn_id=turn_id, question=question, answer=answer, created_by=created_by, created_at=now
        )
        async with self._transaction(writes=True) as conn:
            if turn_id is not None:
                await _require_turn(conn, turn_id)
            correction_id = int((await conn.execute(new.returning(corrections.c.id))).scalar_one())
            source_id = correction_source_id(correction_id)
            await conn.execute(
                corrections.update()
                .where(corrections.c.id == correction_id)
                .values(source_id=source_id)
            )
        return Correction(correction_id, source_id, question, answer, created_by, now, turn_id)

    async def get_correction(self, correction_id: int) -> Correction:
        async with self._reading() as conn:
            return correction_of(await _correction_row(conn, correction_id))

    async def list_corrections(self, limit: int = 100, offset: int = 0) -> list[Correction]:
        """Newest first, withdrawn ones included."""
        k = corrections.c
        newest = sa.select(corrections).order_by(k.created_at.desc(), k.id.desc())
        return [correction_of(row) for row in await self._all(newest.limit(limit).offset(offset))]

    async def edit_correction(
        self, correction_id: int, question: str, answer: str, *, edited_by: str
    ) -> Correction:
        """Raises CorrectionNotFound, and InvalidMessage once it was withdrawn."""
        edited = _unwithdrawn(correction_id).values(
            question=question, answer=answer, edited_by=edited_by, edited_at=self._clock()
        )
        async with self._transaction(writes=True) as conn:
            changed = (await conn.execute(edited)).rowcount
            row = await _correction_row(conn, correction_id)
            if changed == 0:
                raise InvalidMessage("the correction was withdrawn")
        return correction_of(row)

    async def withdraw_correction(self, correction_id: int, *, withdrawn_by: str) -> Correction:
        """Withdrawing one already withdrawn changes nothing. Raises CorrectionNotFound."""
        withdrawn = _unwithdrawn(correction_id).values(
            withdrawn_by=withdrawn_by, withdrawn_at=self._clock()
        )
        async with self._transaction(writes=True) as conn:
            await conn.execute(withdrawn)
            return correction_of(await _correction_row(conn, correction_id))

    async def attach_questions(
        self, correction_id: int, questions: Sequence[str], *, attached_by: str
    ) -> list[AttachedQuestion]:
        """Attach the questions not attached yet; return those. Raises
        CorrectionNotFound, and InvalidMessage once it was withdrawn."""
        async with self._transaction(writes=True) as conn:
            # Holds the correction: two operators attaching at once get distinct positions.
            if correction_of(await _correction_row(conn, correction_id, lock=True)).withdrawn:
                raise InvalidMessage("the correction was withdrawn")
            rows = (await conn.execute(_attached(correction_id))).mappings()
            attached = [attached_question_of(row) for row in rows]
            position = max((a.position for a in attached), default=0)
            now = self._clock()
            added = [
                AttachedQuestion(correction_id, position + n, question, attached_by, now)
                for n, question in enumerate(new_questions(attached, questions), start=1)
            ]
            if added:
                await conn.execute(
                    correction_questions.insert(), [vars(question) for question in added]
                )
        return added

    async def attached_questions(self, correction_id: int) -> list[AttachedQuestion]:
        return [attached_question_of(row) for row in await self._all(_attached(correction_id))]

    async def corrections_asking(self, question: str) -> list[Correction]:
        """The corrections not withdrawn that answer ``question``, as their own question
        or as an attached one, oldest first."""
        k, q = corrections.c, correction_questions.c
        attached = sa.select(q.correction_id).where(q.question == question)
        asking = (
            sa.select(corrections)
            .where(k.withdrawn_at.is_(None), sa.or_(k.question == question, k.id.in_(attached)))
            .order_by(k.id)
        )
        return [correction_of(row) for row in await self._all(asking)]

    async def questions_answered_with(self, reply: str, limit: int) -> list[str]:
        """What customers asked that the bot answered with ``reply``, newest first."""
        bot, customer = turns.alias("b"), turns.alias("c")
        # The customer's message is the turn just before the bot's reply to it.
        asked = (
            sa.select(customer.c.text)
            .join_from(
                bot,
                customer,
                sa.and_(
                    customer.c.conversation_id == bot.c.conversation_id,
                    customer.c.position == bot.c.position - 1,
                ),
            )
            .where(bot.c.role == "bot", bot.c.text == reply, customer.c.role == "customer")
            .order_by(bot.c.created_at.desc())
            .limit(limit)
        )
        return [row["text"] for row in await self._all(asked)]

    # -- re-scrubbing (supportbot scrub) -----------------------------------------------------
    async def read_texts(self, column: str, after: str | int, limit: int) -> list[StoredText]:
        """Up to ``limit`` texts of :data:`bot.store.records.TEXT_COLUMNS` ``column`` with
        keys above ``after``, in key order."""
        return [stored_text_of(r) for r in await self._all(TEXT_COLUMNS[column].page(after, limit))]

    async def write_texts(self, column: str, changes: Sequence[tuple[StoredText, str]]) -> int:
        """Replace each read text by its new text, in one transaction, where it was not
        changed since it was read; return how many were replaced."""
        text = TEXT_COLUMNS[column]
        replaced = 0
        async with self._transaction(writes=True) as conn:
            for old, new in changes:
                replaced += (await conn.execute(text.replace(old, new))).rowcount
        return replaced

    # -- metrics -----------------------------------------------------------------------------
    async def counts(self) -> StoreCounts:
        live = sa.select(sa.func.count()).where(corrections.c.withdrawn_at.is_(None))
        async with self._reading() as conn:
            groups = {
                name: (await conn.execute(query)).all()
                for name, (query, _) in COUNTED_GROUPS.items()
            }
            return store_counts(groups, int(await conn.scalar(live) or 0))


# -- queries ---------------------------------------------------------------------------------
def _conversation(conversation_id: str) -> sa.Select[Any]:
    return sa.select(conversations).where(conversations.c.id == conversation_id)


def _by_ref(channel: str, external_ref: str) -> sa.Select[Any]:
    c = conversations.c
    return sa.select(conversations).where(c.channel == channel, c.external_ref == external_ref)


def _attached(correction_id: int) -> sa.Select[Any]:
    q = correction_questions.c
    return (
        sa.select(correction_questions).where(q.correction_id == correction_id).order_by(q.position)
    )


def _unwithdrawn(correction_id: int) -> sa.Update:
    # A withdrawn correction is history: it is neither edited nor withdrawn again.
    k = corrections.c
    return corrections.update().where(k.id == correction_id, k.withdrawn_at.is_(None))


async def _require_turn(conn: AsyncConnection, turn_id: str) -> RowMapping:
    t = turns.c
    query = sa.select(t.id, t.conversation_id).where(t.id == turn_id)
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise TurnNotFound(turn_id)
    return row


async def _correction_row(
    conn: AsyncConnection, correction_id: int, *, lock: bool = False
) -> RowMapping:
    query = sa.select(corrections).where(corrections.c.id == correction_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).mappings().first()
    if row is None:
        raise CorrectionNotFound(str(correction_id))
    return row
