"""The Slack adapter's tables: the declaration (bot/slack/tables.py) and the Alembic history
(bot/slack/migrations/) agree on SQLite and on PostgreSQL (what ``alembic check`` would
say), and a database built by the release before them, with its hand-written migration,
upgrades in place: every thread, reply, hand-off post and handled event is still there.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.core.errors import StorageUnavailable
from bot.slack import tables
from bot.slack.state import HandoffPost, KnownThread, SlackState, Thread
from retrieval.database import copy_tables, sqlite_url, sync_engine
from tests.support.schema import (
    built_by_the_release_before,
    upgraded,
)

# What the release before Alembic ran (bot/slack/state.py and bot/slack/state_postgres.py,
# MIGRATIONS[0], component "slack"), word for word, through its own runners.
LEGACY_SQLITE = """
    CREATE TABLE slack_seen (
        key TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
    );
    CREATE INDEX slack_seen_expiry ON slack_seen(expires_at);
    CREATE TABLE slack_threads (
        channel TEXT NOT NULL,
        thread_ts TEXT NOT NULL,
        conversation_id TEXT NOT NULL UNIQUE,
        customer TEXT,
        PRIMARY KEY (channel, thread_ts)
    );
    CREATE TABLE slack_replies (
        channel TEXT NOT NULL,
        ts TEXT NOT NULL,
        turn_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        PRIMARY KEY (channel, ts)
    );
    CREATE TABLE slack_handoff_posts (
        channel TEXT NOT NULL,
        ts TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (channel, ts)
    );
    CREATE INDEX slack_handoff_posts_conversation
        ON slack_handoff_posts(conversation_id, created_at);
    """
LEGACY_POSTGRES = LEGACY_SQLITE.replace("REAL", "DOUBLE PRECISION")
# The rows that release wrote (its statements, with its parameters).
LEGACY_ROWS = [
    ("INSERT INTO slack_seen (key, expires_at) VALUES (?, ?)", ("event:Ev1", 0.0)),
    (
        "INSERT INTO slack_threads (channel, thread_ts, conversation_id, customer)"
        " VALUES (?, ?, ?, ?)",
        ("CSUPPORT", "1700000000.000100", "conv-1", "UCUSTOMER"),
    ),
    (
        "INSERT INTO slack_replies (channel, ts, turn_id, conversation_id) VALUES (?, ?, ?, ?)",
        ("CSUPPORT", "1700000000.000200", "turn-1", "conv-1"),
    ),
    (
        "INSERT INTO slack_handoff_posts (channel, ts, conversation_id, created_at)"
        " VALUES (?, ?, ?, ?)",
        ("COPS", "1700000001.000300", "conv-1", 1700000001.0),
    ),
]
THREAD = Thread("CSUPPORT", "1700000000.000100")


def _built_by_the_release_before(url: str) -> None:
    built_by_the_release_before(url, "slack", LEGACY_SQLITE, LEGACY_POSTGRES, LEGACY_ROWS)


def _upgraded(url: str) -> list[object]:
    return upgraded(url, tables.HISTORY)


def test_a_database_of_the_release_before_upgrades_in_place(database_url: str) -> None:
    _built_by_the_release_before(database_url)

    async def used_after_the_upgrade() -> None:
        state = SlackState(database_url, clock=lambda: 1700000100.0)
        await state.open()
        try:
            assert await state.known_thread(THREAD) == KnownThread("conv-1", "UCUSTOMER")
            assert await state.thread_of_conversation("conv-1") == THREAD
            assert await state.turn_of_message("CSUPPORT", "1700000000.000200") == "turn-1"
            post = HandoffPost("COPS", "1700000001.000300", "conv-1")
            assert await state.latest_handoff_post("conv-1") == post
            # The old event expired long ago: claimed again; a new one once only.
            assert await state.claim("event:Ev1", 60)
            assert await state.claim("event:Ev2", 60)
            assert not await state.claim("event:Ev2", 60)
            await state.remember_thread(Thread("CSUPPORT", "1700000002.0"), "conv-2", None)
            assert await state.thread_of_conversation("conv-2") is not None
        finally:
            await state.aclose()

    asyncio.run(used_after_the_upgrade())
    # The tables now agree with the declaration, and the old bookkeeping stays as it was
    # for the components still migrated by hand.
    assert _upgraded(database_url) == []
    engine = sync_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            revision = conn.scalar(sa.text("SELECT version_num FROM alembic_version_slack"))
            legacy = conn.scalar(
                sa.text("SELECT max(version) FROM schema_migrations WHERE component = 'slack'")
            )
    finally:
        engine.dispose()
    assert revision == "slack_0002" and legacy == 1


def test_replicas_starting_at_once_migrate_once(database_url: str) -> None:
    async def start(n: int) -> None:
        states = [SlackState(database_url) for _ in range(n)]
        try:
            await asyncio.gather(*(s.open() for s in states))
            claims = await asyncio.gather(*(s.claim("event:EvX", 60) for s in states))
            assert sorted(claims) == [False] * (n - 1) + [True]
        finally:
            for state in states:
                await state.aclose()

    asyncio.run(start(4))
    assert _upgraded(database_url) == []


def test_a_full_sqlite_disk_is_storage_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "supportbot.db"

    async def fill() -> None:
        state = SlackState(sqlite_url(path), clock=time.time)
        await state.open()
        page_count = sqlite3.connect(path).execute("PRAGMA page_count").fetchone()[0]
        # The state's one connection may not grow the file by one page (the limit is set
        # per connection, and the worker thread keeps its connection).
        await state.database.read(
            lambda conn: conn.exec_driver_sql(f"PRAGMA max_page_count={page_count}")
        )
        with pytest.raises(StorageUnavailable):
            for n in range(10_000):
                await state.remember_thread(Thread("C", f"{n}.0"), f"conv-{n}" + "x" * 500, None)
        assert not state.health.writable
        await state.aclose()

    asyncio.run(fill())


def test_the_tables_copy_in_batches_and_a_second_copy_brings_rows_up_to_date(
    tmp_path: Path, postgres_url: str
) -> None:
    """What `migrate-db` does with the declared tables, on many rows in small batches."""
    source_url = sqlite_url(tmp_path / "supportbot.db")
    for url in (source_url, postgres_url):
        assert _upgraded(url) == []
    source, target = sync_engine(source_url), sync_engine(postgres_url)
    try:
        with source.begin() as conn:
            conn.execute(
                tables.replies.insert(),
                [
                    {
                        "channel": f"C{n % 3}",
                        "ts": f"{n}.0",
                        "turn_id": f"t{n}",
                        "conversation_id": "c",
                    }
                    for n in range(25)
                ],
            )
        batches: list[tuple[str, int]] = []
        copied = copy_tables(
            tables.metadata, source, target, batch=4, on_batch=lambda t, n: batches.append((t, n))
        )
        assert set(copied) == set(tables.metadata.tables)
        assert [n for t, n in batches if t == "slack_replies"] == [4] * 6 + [1]
        with source.begin() as conn:
            conn.execute(tables.replies.update().values(turn_id="edited"))
        copy_tables(tables.metadata, source, target, batch=4)
        with target.connect() as conn:
            turns = conn.execute(sa.select(tables.replies.c.turn_id)).scalars().all()
    finally:
        source.dispose()
        target.dispose()
    assert turns == ["edited"] * 25
