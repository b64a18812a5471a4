"""The conversation store behind the ``ConversationStore`` port (:mod:`bot.core.ports`):
in the home's SQLite file on one box, in PostgreSQL when several server replicas share it.

The same statements run on both (:mod:`bot.store.tables`). Each method's transaction runs
in a worker thread in one hop (:mod:`bot.store.worker`), so no query blocks the event loop;
the statements of the calls every chat message makes are built once, with parameters, and
compiled once for the database (:mod:`bot.store.compiled`); those that read run alone,
outside a transaction. Where two writers could race, the store holds what they race on:
SQLite has one writer at a time (every transaction begins IMMEDIATE), PostgreSQL locks a
conversation's row while a turn is numbered (the UPDATE touching it) and a correction's
while questions are attached to it, and the
``(channel, external_ref)`` key makes two replicas starting the same Slack thread at once
find one conversation.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from bot.core.errors import (
    ConversationNotFound,
    CorrectionNotFound,
    InvalidMessage,
    TurnNotFound,
)
from bot.core.types import (
    AttachedQuestion,
    Conversation,
    ConversationState,
    Correction,
    CustomerDetail,
    FlagReason,
    FlagStatus,
    Outcome,
    Rating,
    Source,
    StoreCounts,
    Turn,
)
from bot.store.compiled import CompiledStatement, Row
from bot.store.health import StorageHealth
from bot.store.records import (
    COUNTED_GROUPS,
    TEXT_COLUMNS,
    StoredText,
    attached_question_of,
    conversation_of,
    correction_of,
    correction_source_id,
    new_questions,
    new_turn,
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
    customer_details,
    flags,
    ratings,
    turns,
)
from bot.store.worker import DatabaseWorker
from retrieval.database import insert, sqlite_url

# -- the statements of every chat message, built once ---------------------------------------
# Each is compiled once for the store's database and run on the driver's cursor
# (:mod:`bot.store.compiled`).
_c, _t = conversations.c, turns.c
_CONVERSATION = sa.select(conversations).where(_c.id == sa.bindparam("conversation"))
_BY_REF = sa.select(conversations).where(
    _c.channel == sa.bindparam("channel_"), _c.external_ref == sa.bindparam("ref")
)
# Touching the conversation first holds it (PostgreSQL's row lock, SQLite's one writer), so
# a turn takes the conversation's next position even when replicas add turns at once, and
# finding no row to touch says the conversation does not exist.
_TOUCHED = (
    conversations.update()
    .where(_c.id == sa.bindparam("conversation"))
    .values(updated_at=sa.bindparam("at"))
)
_NEXT_POSITION = (
    sa.select(sa.func.coalesce(sa.func.max(_t.position), 0) + 1)
    .where(_t.conversation_id == sa.bindparam("conversation"))
    .scalar_subquery()
)
_NEW_TURN = turns.insert().values(position=_NEXT_POSITION)
_NEW_TURN_COLUMNS = [column.name for column in turns.c if column.name != "position"]
_STATE = (
    conversations.update()
    .where(_c.id == sa.bindparam("conversation"))
    .values(state=sa.bindparam("state"), updated_at=sa.bindparam("at"))
)
_TURN = sa.select(turns).where(_t.id == sa.bindparam("turn"))
_TURNS = (
    sa.select(turns).where(_t.conversation_id == sa.bindparam("conversation")).order_by(_t.position)
)
_TURN_KEY = sa.select(_t.id, _t.conversation_id).where(_t.id == sa.bindparam("turn"))
_NEW_FLAG_COLUMNS = ["turn_id", "conversation_id", "reason", "detail", "status", "created_at"]
_k, _q = corrections.c, correction_questions.c
_ASKING = (
    sa.select(corrections)
    .where(
        _k.withdrawn_at.is_(None),
        sa.or_(
            _k.question == sa.bindparam("question"),
            _k.id.in_(sa.select(_q.correction_id).where(_q.question == sa.bindparam("question"))),
        ),
    )
    .order_by(_k.id)
)


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
        url = sqlite_url(database) if isinstance(database, Path) else database
        self.database = DatabaseWorker(url, HISTORY, name="conversation store", pool_size=pool_size)
        self.url = url
        self.engine = self.database.engine
        self._clock = clock
        dialect = self.engine.dialect
        # Inserts that skip or replace a row already there, in the database's own words.
        self._new_conversation = insert(dialect, conversations).on_conflict_do_nothing(
            index_elements=["channel", "external_ref"]
        )
        self._new_flag = insert(dialect, flags).on_conflict_do_nothing(
            index_elements=["turn_id", "reason"], index_where=OPEN_LITERALLY
        )
        rated = insert(dialect, ratings)
        self._rated = rated.on_conflict_do_update(
            index_elements=["turn_id"],
            set_={c: rated.excluded[c] for c in ("value", "comment", "channel", "created_at")},
        )
        compiled = functools.partial(CompiledStatement, dialect=dialect)
        self._sql_conversation = compiled(_CONVERSATION)
        self._sql_by_ref = compiled(_BY_REF)
        self._sql_new_conversation = compiled(self._new_conversation)
        self._sql_touched = compiled(_TOUCHED)
        self._sql_new_turn = compiled(_NEW_TURN, column_keys=_NEW_TURN_COLUMNS)
        self._sql_state = compiled(_STATE)
        self._sql_turn = compiled(_TURN)
        self._sql_turns = compiled(_TURNS)
        self._sql_turn_key = compiled(_TURN_KEY)
        self._sql_rated = compiled(self._rated)
        self._sql_new_flag = compiled(self._new_flag, column_keys=_NEW_FLAG_COLUMNS)

    @property
    def health(self) -> StorageHealth:
        return self.database.health

    # -- lifetime ----------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect and migrate now, so that a bad database fails at start-up."""
        await self.database.open()

    async def aclose(self) -> None:
        """Close the connections; idempotent."""
        await self.database.aclose()

    def _require_turn(self, conn: sa.Connection, turn_id: str) -> Row:
        row = self._sql_turn_key.first(conn, {"turn": turn_id})
        if row is None:
            raise TurnNotFound(turn_id)
        return row

    async def _all(self, statement: sa.Executable, **params: Any) -> Sequence[RowMapping]:
        return await self.database.read(
            lambda conn: conn.execute(statement, params).mappings().all()
        )

    # -- conversations -----------------------------------------------------------------------
    async def create_conversation(
        self, channel: str, external_ref: str | None = None
    ) -> Conversation:
        conversation_id = uuid.uuid4().hex
        now = self._clock()
        row = {
            "id": conversation_id,
            "channel": channel,
            "external_ref": external_ref,
            "state": ConversationState.BOT.value,
            "created_at": now,
            "updated_at": now,
        }

        def create(conn: sa.Connection) -> Conversation:
            # Several processes may start the same external conversation (a Slack thread)
            # at once: one row wins and every one of them reads it back.
            self._sql_new_conversation.execute(conn, row)
            if external_ref is None:
                return Conversation(conversation_id, channel, ConversationState.BOT, now)
            found = self._sql_by_ref.first(conn, {"channel_": channel, "ref": external_ref})
            assert found is not None  # inserted, or there already
            return conversation_of(found)

        return await self.database.write(create)

    async def get_conversation(self, conversation_id: str) -> Conversation:
        row = await self.database.first(self._sql_conversation, {"conversation": conversation_id})
        if row is None:
            raise ConversationNotFound(conversation_id)
        return conversation_of(row)

    async def set_state(self, conversation_id: str, state: ConversationState) -> None:
        changed = {
            "conversation": conversation_id,
            "state": ConversationState(state).value,
            "at": self._clock(),
        }

        def set_state(conn: sa.Connection) -> None:
            if self._sql_state.execute(conn, changed).rowcount == 0:
                raise ConversationNotFound(conversation_id)

        await self.database.write(set_state)

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
        details: Sequence[CustomerDetail] = (),
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
        touched = {"conversation": conversation_id, "at": turn.created_at}
        row = {"conversation": conversation_id, **turn_values(turn)}
        kept = [
            {
                "turn_id": turn.id,
                "position": position,
                "conversation_id": conversation_id,
                "kind": detail.kind,
                "value": detail.value,
                "created_at": turn.created_at,
            }
            for position, detail in enumerate(details, start=1)
        ]

        def add(conn: sa.Connection) -> Turn:
            if self._sql_touched.execute(conn, touched).rowcount == 0:
                raise ConversationNotFound(conversation_id)
            self._sql_new_turn.execute(conn, row)
            if kept:
                conn.execute(customer_details.insert(), kept)
            return turn

        return await self.database.write(add)

    async def get_turn(self, turn_id: str) -> Turn:
        row = await self.database.first(self._sql_turn, {"turn": turn_id})
        if row is None:
            raise TurnNotFound(turn_id)
        return turn_of(row)

    async def list_turns(self, conversation_id: str) -> list[Turn]:
        rows = await self.database.rows(self._sql_turns, {"conversation": conversation_id})
        return [turn_of(row) for row in rows]

    async def forget_customer_details(self, older_than_s: float) -> int:
        """Delete the customer details kept longer than ``older_than_s`` seconds (0: all);
        return how many."""
        forgotten = customer_details.delete()
        if older_than_s > 0:
            forgotten = forgotten.where(
                customer_details.c.created_at < self._clock() - older_than_s
            )
        return await self.database.write(lambda conn: int(conn.execute(forgotten).rowcount))

    # -- ratings -----------------------------------------------------------------------------
    async def add_rating(self, rating: Rating) -> None:
        """Raises TurnNotFound; a second rating of a turn replaces the first."""
        row = {
            "turn_id": rating.turn_id,
            "value": rating.value,
            "comment": rating.comment,
            "channel": rating.channel,
            "created_at": self._clock(),
        }

        def rate(conn: sa.Connection) -> None:
            self._require_turn(conn, rating.turn_id)
            self._sql_rated.execute(conn, row)

        await self.database.write(rate)

    # -- flags -------------------------------------------------------------------------------
    async def add_flag(self, turn_id: str, reason: FlagReason, detail: str = "") -> None:
        """Queue a turn for review; the same open flag is not queued twice."""
        row = {
            "turn_id": turn_id,
            "reason": FlagReason(reason).value,
            "detail": detail,
            "status": FlagStatus.OPEN.value,
            "created_at": self._clock(),
        }

        def flag(conn: sa.Connection) -> None:
            turn = self._require_turn(conn, turn_id)
            self._sql_new_flag.execute(conn, {**row, "conversation_id": turn["conversation_id"]})

        await self.database.write(flag)

    async def resolve_turn_flags(self, turn_id: str, status: FlagStatus, resolved_by: str) -> int:
        status = FlagStatus(status)
        if status is FlagStatus.OPEN:
            raise ValueError("resolve_turn_flags needs a closing status, not OPEN")
        resolved = (
            flags.update()
            .where(flags.c.turn_id == turn_id, OPEN)
            .values(status=status.value, resolved_at=self._clock(), resolved_by=resolved_by)
        )
        return await self.database.write(lambda conn: int(conn.execute(resolved).rowcount))

    # -- corrections -------------------------------------------------------------------------
    async def add_correction(
        self, question: str, answer: str, *, created_by: str, turn_id: str | None = None
    ) -> Correction:
        now = self._clock()
        new = corrections.insert().values(
            turn_id=turn_id, question=question, answer=answer, created_by=created_by, created_at=now
        )

        def add(conn: sa.Connection) -> Correction:
            if turn_id is not None:
                self._require_turn(conn, turn_id)
            correction_id = int(conn.execute(new.returning(corrections.c.id)).scalar_one())
            source_id = correction_source_id(correction_id)
            conn.execute(
                corrections.update()
                .where(corrections.c.id == correction_id)
                .values(source_id=source_id)
            )
            return Correction(correction_id, source_id, question, answer, created_by, now, turn_id)

        return await self.database.write(add)

    async def get_correction(self, correction_id: int) -> Correction:
        return await self.database.read(
            lambda conn: correction_of(_correction_row(conn, correction_id))
        )

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

        def edit(conn: sa.Connection) -> Correction:
            changed = conn.execute(edited).rowcount
            row = _correction_row(conn, correction_id)
            if changed == 0:
                raise InvalidMessage("the correction was withdrawn")
            return correction_of(row)

        return await self.database.write(edit)

    async def withdraw_correction(self, correction_id: int, *, withdrawn_by: str) -> Correction:
        """Withdrawing one already withdrawn changes nothing. Raises CorrectionNotFound."""
        withdrawn = _unwithdrawn(correction_id).values(
            withdrawn_by=withdrawn_by, withdrawn_at=self._clock()
        )

        def withdraw(conn: sa.Connection) -> Correction:
            conn.execute(withdrawn)
            return correction_of(_correction_row(conn, correction_id))

        return await self.database.write(withdraw)

    async def attach_questions(
        self, correction_id: int, questions: Sequence[str], *, attached_by: str
    ) -> list[AttachedQuestion]:
        """Attach the questions not attached yet; return those. Raises
        CorrectionNotFound, and InvalidMessage once it was withdrawn."""
        now = self._clock()

        def attach(conn: sa.Connection) -> list[AttachedQuestion]:
            # Holds the correction: two operators attaching at once get distinct positions.
            if correction_of(_correction_row(conn, correction_id, lock=True)).withdrawn:
                raise InvalidMessage("the correction was withdrawn")
            rows = conn.execute(_attached(correction_id)).mappings()
            attached = [attached_question_of(row) for row in rows]
            position = max((a.position for a in attached), default=0)
            added = [
                AttachedQuestion(correction_id, position + n, question, attached_by, now)
                for n, question in enumerate(new_questions(attached, questions), start=1)
            ]
            if added:
                conn.execute(correction_questions.insert(), [vars(question) for question in added])
            return added

        return await self.database.write(attach)

    async def attached_questions(self, correction_id: int) -> list[AttachedQuestion]:
        return [attached_question_of(row) for row in await self._all(_attached(correction_id))]

    async def corrections_asking(self, question: str) -> list[Correction]:
        """The corrections not withdrawn that answer ``question``, as their own question
        or as an attached one, oldest first."""
        return [correction_of(row) for row in await self._all(_ASKING, question=question)]

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
        return await self.database.write(
            lambda conn: sum(conn.execute(text.replace(old, new)).rowcount for old, new in changes)
        )

    # -- metrics -----------------------------------------------------------------------------
    async def counts(self) -> StoreCounts:
        live = sa.select(sa.func.count()).where(corrections.c.withdrawn_at.is_(None))

        def count(conn: sa.Connection) -> StoreCounts:
            groups = {
                name: conn.execute(query).all() for name, (query, _) in COUNTED_GROUPS.items()
            }
            return store_counts(groups, int(conn.scalar(live) or 0))

        return await self.database.read(count)


# -- queries ---------------------------------------------------------------------------------
def _attached(correction_id: int) -> sa.Select[Any]:
    q = correction_questions.c
    return (
        sa.select(correction_questions).where(q.correction_id == correction_id).order_by(q.position)
    )


def _unwithdrawn(correction_id: int) -> sa.Update:
    # A withdrawn correction is history: it is neither edited nor withdrawn again.
    k = corrections.c
    return corrections.update().where(k.id == correction_id, k.withdrawn_at.is_(None))


def _correction_row(conn: sa.Connection, correction_id: int, *, lock: bool = False) -> RowMapping:
    query = sa.select(corrections).where(corrections.c.id == correction_id)
    row = conn.execute(query.with_for_update() if lock else query).mappings().first()
    if row is None:
        raise CorrectionNotFound(str(correction_id))
    return row
