"""The conversation store's tables: the Alembic history (bot/store/migrations/) builds what
the release before built with its hand-written migrations, on SQLite and on PostgreSQL
(keys, foreign keys, CHECKs, unique constraints and the partial index included), and a
database that release built, at any of its versions, upgrades in place: every
conversation, turn, rating, flag and correction reads the same, a correction made before
can be edited and given questions, new ids follow the old, and migrate-db copies it all.
(That the declaration and the history agree is tests/test_schema_histories.py.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.components import DECLARED_TABLES
from bot.core.errors import InvalidMessage
from bot.core.types import ConversationState, CustomerDetail, FlagReason, FlagStatus, Outcome
from bot.ops.queries import conversation_extras
from bot.store import tables
from bot.store.conversations import ConversationDatabase
from bot.store.migrate import migrate_sqlite_to_postgres
from retrieval.database import sqlite_url, sync_engine
from tests.support.legacy_conversations import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS
from tests.support.schema import built_by_the_release_before, upgraded
from tests.support.store_reads import find_conversation, get_rating, list_flags, resolve_flag

NOW = 1_700_000_000.0
SOURCES = (
    '[{"source_id": "c1#1", "score": 0.9, "kind": "logged", "customer_text": "q",'
    ' "agent_reply": "a", "support": 1}]'
)

# What the release before wrote (its statements, with its parameters): a conversation with
# a question and a rated, flagged reply, and a correction of that reply.
ROWS: list[tuple[str, tuple[object, ...]]] = [
    (
        "INSERT INTO bot_conversations (id, channel, external_ref, state, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        ("conv-1", "slack", "C1:1.5", "human", NOW, NOW + 2),
    ),
    (
        "INSERT INTO bot_turns (id, conversation_id, position, role, text, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        ("turn-1", "conv-1", 1, "customer", "Où est ma commande ?", NOW + 1),
    ),
    (
        "INSERT INTO bot_turns (id, conversation_id, position, role, text, outcome,"
        " confidence, sources, latency_ms, index_version, model_version, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            "turn-2",
            "conv-1",
            2,
            "bot",
            "3-5 days.",
            "generated",
            0.8,
            SOURCES,
            12.5,
            "3",
            "a1",
            NOW + 2,
        ),
    ),
    (
        "INSERT INTO bot_ratings (turn_id, value, comment, channel, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        ("turn-2", "down", "too slow", "slack", NOW + 3),
    ),
    (
        "INSERT INTO bot_flags (turn_id, conversation_id, reason, detail, status, created_at)"
        " VALUES (?, ?, ?, ?, 'open', ?)",
        ("turn-2", "conv-1", "thumbs_down", "too slow", NOW + 3),
    ),
    (
        "INSERT INTO bot_corrections (turn_id, question, answer, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        ("turn-2", "Où est ma commande ?", "Tracked: 2 days.", "ana", NOW + 4),
    ),
    ("UPDATE bot_corrections SET source_id = ? WHERE id = ?", ("correction:1", 1)),
]


def _built_by_the_release_before(url: str, version: int, *, rows: bool = True) -> None:
    """The tables as that release's migrations 1 to ``version`` built them, holding ROWS."""
    built_by_the_release_before(
        url, "bot", SQLITE_MIGRATIONS[:version], POSTGRES_MIGRATIONS[:version], ROWS if rows else ()
    )


def _shape(url: str) -> dict[str, object]:
    """What the conversation tables hold and refuse, as the database itself reports it."""
    engine = sync_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            seen = sa.inspect(conn)
            sqlite = conn.dialect.name == "sqlite"
            return {
                name: (
                    # SQLite: an INTEGER PRIMARY KEY is the rowid, never NULL, however built.
                    [
                        (c["name"], str(c["type"]), c["nullable"] and not _rowid(c))
                        for c in seen.get_columns(name)
                    ],
                    seen.get_pk_constraint(name)["constrained_columns"],
                    sorted(
                        (f["constrained_columns"], f["referred_table"], f["referred_columns"])
                        for f in seen.get_foreign_keys(name)
                    ),
                    sorted(
                        (u["name"] if not sqlite else "", u["column_names"])
                        for u in seen.get_unique_constraints(name)
                    ),
                    sorted(
                        (i["name"], i["column_names"], i["unique"]) for i in seen.get_indexes(name)
                    ),
                    sorted(
                        " ".join(c["sqltext"].split()) for c in seen.get_check_constraints(name)
                    ),
                )
                for name in sorted(tables.metadata.tables)
            }
    finally:
        engine.dispose()


def _rowid(column: Any) -> bool:
    return bool(column["name"] == "id" and "INT" in str(column["type"]))


def _two_databases(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if kind == "sqlite":
        return sqlite_url(tmp_path / "new.db"), sqlite_url(tmp_path / "legacy.db")
    server = request.getfixturevalue("postgres_server")
    return server.create_database(), server.create_database()


@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_history_builds_what_the_release_before_built(
    kind: str, version: int, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    new, legacy = _two_databases(kind, request, tmp_path)
    _built_by_the_release_before(legacy, version, rows=False)
    assert _upgraded(new) == [] and _upgraded(legacy) == []
    assert _shape(new) == _shape(legacy)


def _upgraded(url: str) -> list[object]:
    return upgraded(url, tables.HISTORY)


@pytest.mark.parametrize("version", [1, 3])
async def test_a_database_of_the_release_before_upgrades_in_place(
    database_url: str, version: int
) -> None:
    await asyncio.to_thread(_built_by_the_release_before, database_url, version)
    store = ConversationDatabase(database_url, clock=lambda: NOW + 10)
    try:
        await store.open()
        conversation = await find_conversation(store, "slack", "C1:1.5")
        assert conversation is not None and conversation.id == "conv-1"
        assert conversation.state is ConversationState.HUMAN
        turns = await store.list_turns("conv-1")
        assert [(t.role, t.text) for t in turns] == [
            ("customer", "Où est ma commande ?"),
            ("bot", "3-5 days."),
        ]
        assert turns[1].outcome is Outcome.GENERATED and turns[1].sources[0].source_id == "c1#1"
        rating = await get_rating(store, "turn-2")
        assert rating is not None and (rating.value, rating.comment) == ("down", "too slow")
        (flag,) = await list_flags(store)
        assert (flag.id, flag.reason, flag.channel) == (1, FlagReason.THUMBS_DOWN, "slack")
        # The same open flag is still not queued twice; new ids follow the old.
        await store.add_flag("turn-2", FlagReason.THUMBS_DOWN)
        await store.add_flag("turn-2", FlagReason.LOW_CONFIDENCE)
        # (PostgreSQL spent an id on the flag not queued twice.)
        assert [f.id for f in await list_flags(store)] in ([1, 2], [1, 3])
        await resolve_flag(store, 1, FlagStatus.CORRECTED, "ana")
        old = await store.get_correction(1)
        assert (old.source_id, old.answer, old.withdrawn) == (
            "correction:1",
            "Tracked: 2 days.",
            False,
        )
        edited = await store.edit_correction(1, old.question, "Tracked: 1 day.", edited_by="bo")
        assert (edited.answer, edited.edited_by) == ("Tracked: 1 day.", "bo")
        attached = await store.attach_questions(1, ["where's my parcel"], attached_by="bo")
        assert [(a.correction_id, a.position) for a in attached] == [(1, 1)]
        assert (await store.add_correction("q", "a", created_by="cy")).source_id == "correction:2"
        await store.withdraw_correction(1, withdrawn_by="cy")
        with pytest.raises(InvalidMessage):
            await store.edit_correction(1, "q", "a", edited_by="cy")
        turn = await store.add_turn("conv-1", "agent", "Sam here.")
        assert [t.id for t in await store.list_turns("conv-1")][-1] == turn.id
        # conversations_0004 widened the outcome's CHECK, without losing what refers to turns.
        thanks = await store.add_turn(
            "conv-1", "bot", "You're welcome!", outcome=Outcome.SMALL_TALK
        )
        assert (await store.get_turn(thanks.id)).outcome is Outcome.SMALL_TALK
        invented = sa.text("UPDATE bot_turns SET outcome = 'invented' WHERE id = :id")
        with pytest.raises(sa.exc.IntegrityError):  # still a CHECK
            await store.database.write(lambda conn: conn.execute(invented, {"id": thanks.id}))
        assert await get_rating(store, "turn-2") is not None
    finally:
        await store.aclose()
    # The tables now agree with the declaration; the old bookkeeping stays as it was.
    assert await asyncio.to_thread(_upgraded, database_url) == []
    engine = sync_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            revision = conn.scalar(sa.text("SELECT version_num FROM alembic_version_conversations"))
            legacy = conn.scalar(
                sa.text("SELECT max(version) FROM schema_migrations WHERE component = 'bot'")
            )
    finally:
        engine.dispose()
    assert revision == "conversations_0005" and legacy == version


def test_migrate_db_carries_the_conversations_of_the_release_before(
    tmp_path: Path, postgres_url: str
) -> None:
    """A home no command of this release opened yet: migrate-db brings its tables to this
    release's, then copies them; a replica reads them where they were."""
    database = tmp_path / "old" / "supportbot.db"
    database.parent.mkdir()
    _built_by_the_release_before(sqlite_url(database), 2)
    counts = migrate_sqlite_to_postgres(database, postgres_url, declared=DECLARED_TABLES)
    copied = {c.table: c.target for c in counts if c.table.startswith("bot_")}
    assert copied == {
        "bot_conversations": 1,
        "bot_turns": 2,
        "bot_ratings": 1,
        "bot_flags": 1,
        "bot_corrections": 1,
        "bot_correction_questions": 0,
        "bot_customer_details": 0,
    }

    async def on_the_replica() -> None:
        replica = ConversationDatabase(postgres_url, clock=lambda: NOW + 10)
        try:
            assert [t.id for t in await replica.list_turns("conv-1")] == ["turn-1", "turn-2"]
            assert [f.detail for f in await list_flags(replica)] == ["too slow"]
            assert (await replica.get_correction(1)).source_id == "correction:1"
            # New ids follow the copied ones.
            assert (await replica.add_correction("q", "a", created_by="cy")).id == 2
            await replica.add_flag("turn-1", FlagReason.HANDOFF)
            assert [f.id for f in await list_flags(replica)] == [1, 2]
        finally:
            await replica.aclose()

    asyncio.run(on_the_replica())


def _built_by_the_tree_before(url: str) -> None:
    """The tables as the tree before this table was added built them (Alembic, up to
    conversations_0004), holding ROWS."""
    from alembic import command
    from alembic.config import Config

    engine = sync_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(tables.HISTORY.folder))
            config.attributes["connection"] = conn
            config.attributes["history"] = tables.HISTORY
            command.upgrade(config, "conversations_0004")
            assert not sa.inspect(conn).has_table("bot_customer_details")
            for sql, params in ROWS:
                conn.exec_driver_sql(sql.replace("?", "%s" if "postgres" in url else "?"), params)
    finally:
        engine.dispose()


async def test_a_database_of_the_tree_before_gains_the_customer_details_in_place(
    database_url: str,
) -> None:
    await asyncio.to_thread(_built_by_the_tree_before, database_url)
    store = ConversationDatabase(database_url, clock=lambda: NOW + 10)
    try:
        await store.open()
        assert [t.text for t in await store.list_turns("conv-1")] == [
            "Où est ma commande ?",
            "3-5 days.",
        ]
        kept = [CustomerDetail("email", "ana@example.com")]
        turn = await store.add_turn("conv-1", "customer", "c'est [EMAIL]", details=kept)
        shown = await store.database.read(lambda conn: conversation_extras(conn, "conv-1"))
        assert shown.details == {turn.id: kept}
        assert shown.ratings["turn-2"].comment == "too slow"
    finally:
        await store.aclose()
    assert await asyncio.to_thread(_upgraded, database_url) == []
