"""The conversation store on both backends: SQLite on real files and a real PostgreSQL
server (a fresh database per test): round trips, migrations, queue queries, concurrency."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.core.errors import (
    ConversationNotFound,
    CorrectionNotFound,
    InvalidMessage,
    TurnNotFound,
)
from bot.core.types import (
    ConversationState,
    CustomerDetail,
    FlagReason,
    FlagStatus,
    Outcome,
    Rating,
)
from bot.ops.queries import conversation_extras
from bot.store.conversations import ConversationDatabase
from tests.support.fakes import source
from tests.support.store_reads import find_conversation, get_rating, list_flags

BACKENDS = ["sqlite", "postgres"]
AnyConversationStore = ConversationDatabase
HEAD = "conversations_0005"


class Clock:
    """A clock that moves one second per reading, so creation order is observable."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "supportbot.db"


StoreFactory = Callable[..., Awaitable[AnyConversationStore]]


@pytest.fixture(params=BACKENDS)
async def make_store(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[StoreFactory]:
    """Opens stores of the parametrized backend, all on the same database of this test."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    opened: list[AnyConversationStore] = []

    async def make(clock: Callable[[], float] | None = None) -> AnyConversationStore:
        extra = {} if clock is None else {"clock": clock}
        store = ConversationDatabase(db_path if url is None else url, **extra)
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.aclose()


@pytest.fixture
async def store(make_store: StoreFactory) -> AnyConversationStore:
    return await make_store(Clock())


async def test_conversation_round_trip(store: AnyConversationStore) -> None:
    created = await store.create_conversation("web", "client-1")
    assert created.state is ConversationState.BOT
    assert await store.get_conversation(created.id) == created
    assert await find_conversation(store, "web", "client-1") == created
    assert await find_conversation(store, "slack", "client-1") is None

    await store.set_state(created.id, ConversationState.HUMAN)
    assert (await store.get_conversation(created.id)).state is ConversationState.HUMAN

    with pytest.raises(ConversationNotFound):
        await store.get_conversation("nope")
    with pytest.raises(ConversationNotFound):
        await store.set_state("nope", ConversationState.BOT)


async def test_one_conversation_per_channel_and_external_ref(
    store: AnyConversationStore,
) -> None:
    ref = "T1:C1:1.5"
    same = await asyncio.gather(*(store.create_conversation("slack", ref) for _ in range(10)))
    assert len({c.id for c in same}) == 1
    other_channel = await store.create_conversation("web", ref)
    assert other_channel.id != same[0].id
    # Without an external reference every conversation is a new one.
    anonymous = {(await store.create_conversation("web")).id for _ in range(3)}
    assert len(anonymous) == 3


async def test_turn_round_trip_keeps_order_sources_and_text(
    store: AnyConversationStore,
) -> None:
    conversation = await store.create_conversation("web")
    customer = await store.add_turn(conversation.id, "customer", "Où est ma commande ? 📦")
    evidence = (
        source("c-ship#1", "When will it arrive?", "3-5 business days (KB-SHP-01).", 0.91),
        source("correction:3", "Parcel late?", "We open a trace.", 0.88, kind="curated", support=2),
    )
    bot = await store.add_turn(
        conversation.id,
        "bot",
        "Standard shipping takes 3-5 business days.",
        outcome=Outcome.GENERATED,
        confidence=0.87,
        sources=evidence,
        latency_ms=123.4,
        index_version="7",
        model_version="adapter-2",
    )
    turns = await store.list_turns(conversation.id)
    assert turns == [customer, bot]
    assert turns[0].text == "Où est ma commande ? 📦"
    assert turns[1].sources == evidence
    assert (turns[1].outcome, turns[1].confidence, turns[1].latency_ms) == (
        Outcome.GENERATED,
        0.87,
        123.4,
    )
    assert (turns[1].index_version, turns[1].model_version) == ("7", "adapter-2")
    assert await store.get_turn(bot.id) == bot

    with pytest.raises(TurnNotFound):
        await store.get_turn("nope")
    with pytest.raises(ConversationNotFound):
        await store.add_turn("nope", "customer", "hello")


@pytest.mark.parametrize(
    "text",
    [
        "Robert'); DROP TABLE bot_turns;--",
        "' OR 1=1 --",
        'SELECT * FROM bot_flags WHERE reason = "x"; -- %s ? :name',
    ],
)
async def test_sql_looking_text_is_stored_verbatim(store: AnyConversationStore, text: str) -> None:
    conversation = await store.create_conversation("web", external_ref=text)
    turn = await store.add_turn(conversation.id, "customer", text)
    await store.add_flag(turn.id, FlagReason.HANDOFF, detail=text)
    assert (await store.get_turn(turn.id)).text == text
    assert (await find_conversation(store, "web", text)) == conversation
    assert [f.detail for f in await list_flags(store)] == [text]
    assert len(await store.list_turns(conversation.id)) == 1  # the table is still there


async def test_reopening_keeps_data_and_does_not_migrate_twice(make_store: StoreFactory) -> None:
    first = await make_store()
    conversation = await first.create_conversation("web", "ref")
    await first.add_turn(conversation.id, "customer", "hello")
    await first.aclose()

    for _ in range(2):
        again = await make_store()
        assert await find_conversation(again, "web", "ref") == conversation
        assert [t.text for t in await again.list_turns(conversation.id)] == ["hello"]
        await again.aclose()


async def test_sqlite_records_its_schema_version_and_runs_in_wal(db_path: Path) -> None:
    store = ConversationDatabase(db_path)
    await store.open()
    await store.aclose()
    raw = sqlite3.connect(db_path)
    try:
        versions = raw.execute("SELECT version_num FROM alembic_version_conversations").fetchall()
        assert versions == [(HEAD,)]
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()


async def test_reads_do_not_queue_behind_another_writer_of_the_file(db_path: Path) -> None:
    # An ingest or another replica holding the SQLite file's write lock: the chat's reads
    # answer from their snapshot at once (before, each began IMMEDIATE and waited for it).
    store = ConversationDatabase(db_path)
    conversation = await store.create_conversation("web", "ref")
    await store.add_turn(conversation.id, "customer", "hello")
    writer = sqlite3.connect(db_path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE bot_conversations SET state = state")
        turns = await asyncio.wait_for(store.list_turns(conversation.id), timeout=5)
        assert [t.text for t in turns] == ["hello"]
        counts = await asyncio.wait_for(store.counts(), timeout=5)
        assert sum(counts.conversations_by_state.values()) == 1
    finally:
        writer.rollback()
        writer.close()
        await store.aclose()


async def test_postgres_records_the_same_schema_version_as_sqlite(postgres_url: str) -> None:
    import psycopg

    # Two replicas starting at once: one migrates, the other finds it done.
    stores = [ConversationDatabase(postgres_url) for _ in range(2)]
    await asyncio.gather(*(s.open() for s in stores))
    for s in stores:
        await s.aclose()
    with psycopg.connect(postgres_url) as conn:
        versions = conn.execute("SELECT version_num FROM alembic_version_conversations").fetchall()
    assert versions == [(HEAD,)]


async def test_a_second_rating_replaces_the_first(store: AnyConversationStore) -> None:
    conversation = await store.create_conversation("web")
    turn = await store.add_turn(conversation.id, "bot", "Gift cards never expire.")
    await store.add_rating(Rating(turn.id, "up"))
    await store.add_rating(Rating(turn.id, "down", "wrong answer", channel="slack"))
    assert await get_rating(store, turn.id) == Rating(turn.id, "down", "wrong answer", "slack")
    assert (await store.counts()).ratings_by_value == {"up": 0, "down": 1}

    with pytest.raises(TurnNotFound):
        await store.add_rating(Rating("nope", "up"))


async def _flagged_turns(store: AnyConversationStore) -> dict[str, str]:
    """Three flagged turns, created in the order web, slack, web."""
    ids = {}
    for name, channel, reason in (
        ("first", "web", FlagReason.LOW_CONFIDENCE),
        ("second", "slack", FlagReason.NOT_HELPFUL),
        ("third", "web", FlagReason.THUMBS_DOWN),
    ):
        conversation = await store.create_conversation(channel)
        turn = await store.add_turn(conversation.id, "bot", name)
        await store.add_flag(turn.id, reason, detail=name)
        ids[name] = turn.id
    return ids


async def test_resolving_a_turns_flags_takes_them_out_of_the_queue(
    store: AnyConversationStore,
) -> None:
    ids = await _flagged_turns(store)
    assert await store.resolve_turn_flags(ids["third"], FlagStatus.CORRECTED, "bo") == 1
    assert [f.detail for f in await list_flags(store)] == ["first", "second"]
    corrected = await list_flags(store, FlagStatus.CORRECTED)
    assert [f.resolved_by for f in corrected] == ["bo"]
    assert corrected[0].resolved_at is not None
    assert await store.resolve_turn_flags(ids["third"], FlagStatus.CORRECTED, "bo") == 0


async def test_an_open_flag_is_not_queued_twice(store: AnyConversationStore) -> None:
    conversation = await store.create_conversation("web")
    turn = await store.add_turn(conversation.id, "bot", "hi")
    await store.add_flag(turn.id, FlagReason.THUMBS_DOWN, "first")
    await store.add_flag(turn.id, FlagReason.THUMBS_DOWN, "again")
    await store.add_flag(turn.id, FlagReason.GROUNDING_FALLBACK)
    assert [f.reason for f in await list_flags(store)] == [
        FlagReason.THUMBS_DOWN,
        FlagReason.GROUNDING_FALLBACK,
    ]
    # Once reviewed, a new complaint opens a new flag.
    await store.resolve_turn_flags(turn.id, FlagStatus.REJECTED, "ana")
    await store.add_flag(turn.id, FlagReason.THUMBS_DOWN, "later")
    assert [f.detail for f in await list_flags(store)] == ["later"]

    with pytest.raises(TurnNotFound):
        await store.add_flag("nope", FlagReason.HANDOFF)


async def test_corrections_get_the_source_id_retrieval_serves_them_under(
    store: AnyConversationStore,
) -> None:
    conversation = await store.create_conversation("web")
    turn = await store.add_turn(conversation.id, "bot", "wrong")
    first = await store.add_correction("Can I pay by PayPal?", "Yes.", created_by="ana")
    second = await store.add_correction(
        "Do you ship to Norway?", "Yes, 5-8 days.", created_by="bo", turn_id=turn.id
    )
    assert first.source_id == f"correction:{first.id}"
    assert (second.turn_id, second.created_by) == (turn.id, "bo")
    assert await store.list_corrections() == [second, first]
    assert (await store.counts()).corrections == 2
    with pytest.raises(TurnNotFound):
        await store.add_correction("q", "a", created_by="ana", turn_id="nope")


async def test_a_correction_is_edited_then_withdrawn_once_and_then_stays_as_it_is(
    store: AnyConversationStore,
) -> None:
    conversation = await store.create_conversation("web")
    turn = await store.add_turn(conversation.id, "bot", "wrong")
    made = await store.add_correction("Paypal?", "<b>oops</b>", created_by="ana", turn_id=turn.id)
    other = await store.add_correction("Norway?", "Yes.", created_by="ana")

    edited = await store.edit_correction(made.id, "Pay by PayPal?", "Yes.", edited_by="bo")
    assert (edited.question, edited.answer, edited.edited_by) == ("Pay by PayPal?", "Yes.", "bo")
    assert (edited.source_id, edited.created_by, edited.turn_id) == (made.source_id, "ana", turn.id)
    assert edited.edited_at is not None and not edited.withdrawn
    assert await store.get_correction(made.id) == edited

    withdrawn = await store.withdraw_correction(made.id, withdrawn_by="cy")
    assert withdrawn.withdrawn and withdrawn.withdrawn_by == "cy"
    assert (await store.counts()).corrections == 1  # only the one still served
    again = await store.withdraw_correction(made.id, withdrawn_by="dee")
    assert again == withdrawn  # the first withdrawal's who and when stay
    with pytest.raises(InvalidMessage):
        await store.edit_correction(made.id, "q", "a", edited_by="bo")
    assert await store.get_correction(made.id) == withdrawn

    assert await store.list_corrections() == [other, withdrawn]
    assert await store.list_corrections(1, offset=1) == [withdrawn]
    for call in (
        store.get_correction(999),
        store.edit_correction(999, "q", "a", edited_by="bo"),
        store.withdraw_correction(999, withdrawn_by="bo"),
    ):
        with pytest.raises(CorrectionNotFound):
            await call


async def test_questions_attached_to_a_correction_are_kept_in_order_and_found(
    store: AnyConversationStore,
) -> None:
    conversation = await store.create_conversation("web")
    await store.add_turn(conversation.id, "customer", "paypal ok?")
    wrong = await store.add_turn(conversation.id, "bot", "Cards only.")
    made = await store.add_correction("Paypal?", "Yes.", created_by="ana", turn_id=wrong.id)
    other = await store.add_correction("Norway?", "Yes, 5-8 days.", created_by="ana")

    first = await store.attach_questions(made.id, ["pay with paypal", "paypal?"], attached_by="bo")
    assert [(a.source_id, a.question, a.attached_by) for a in first] == [
        (f"{made.source_id}:1", "pay with paypal", "bo"),
        (f"{made.source_id}:2", "paypal?", "bo"),
    ]
    # One already attached is skipped; the next one continues the numbering.
    again = await store.attach_questions(made.id, ["paypal?", "paypal accepted"], attached_by="cy")
    assert [a.source_id for a in again] == [f"{made.source_id}:3"]
    assert [a.question for a in await store.attached_questions(made.id)] == [
        "pay with paypal",
        "paypal?",
        "paypal accepted",
    ]
    assert await store.attached_questions(other.id) == []

    assert await store.corrections_asking("paypal accepted") == [made]
    assert await store.corrections_asking("Norway?") == [other]
    assert await store.questions_answered_with("Cards only.", 10) == ["paypal ok?"]
    assert await store.questions_answered_with("Something else.", 10) == []

    await store.withdraw_correction(made.id, withdrawn_by="cy")
    assert await store.corrections_asking("paypal accepted") == []  # a withdrawn one asks nothing
    with pytest.raises(InvalidMessage):
        await store.attach_questions(made.id, ["more"], attached_by="bo")
    with pytest.raises(CorrectionNotFound):
        await store.attach_questions(999, ["q"], attached_by="bo")


async def test_counts_cover_every_state_role_outcome_and_reason(
    store: AnyConversationStore,
) -> None:
    conversation = await store.create_conversation("web")
    await store.create_conversation("web")
    await store.set_state(conversation.id, ConversationState.HUMAN)
    await store.add_turn(conversation.id, "customer", "?")
    turn = await store.add_turn(conversation.id, "bot", "…", outcome=Outcome.HANDOFF)
    await store.add_flag(turn.id, FlagReason.LOW_CONFIDENCE)
    counts = await store.counts()
    assert counts.conversations_by_state == {"bot": 1, "human": 1, "closed": 0}
    assert counts.turns_by_role == {"customer": 1, "bot": 1, "agent": 0}
    assert counts.replies_by_outcome == {
        "generated": 0,
        "copied": 0,
        "handoff": 1,
        "small_talk": 0,
    }
    assert counts.open_flags_by_reason["low_confidence"] == 1
    assert set(counts.open_flags_by_reason) == {r.value for r in FlagReason}


async def test_concurrent_writes_from_many_coroutines(store: AnyConversationStore) -> None:
    conversations = await asyncio.gather(*(store.create_conversation("web") for _ in range(8)))

    async def chat(conversation_id: str, n: int) -> None:
        for i in range(n):
            turn = await store.add_turn(conversation_id, "customer", f"message {i}")
            await store.add_flag(turn.id, FlagReason.LOW_CONFIDENCE)

    await asyncio.gather(*(chat(c.id, 25) for c in conversations))
    # Many writers into one conversation at once still get distinct, gap-free positions.
    shared = conversations[0].id
    await asyncio.gather(*(store.add_turn(shared, "agent", f"burst {i}") for i in range(50)))

    for conversation in conversations:
        texts = [t.text for t in await store.list_turns(conversation.id)]
        expected = [f"message {i}" for i in range(25)]
        if conversation.id == shared:
            assert texts[:25] == expected and len(texts) == 75
        else:
            assert texts == expected
    counts = await store.counts()
    assert counts.turns_by_role == {"customer": 200, "bot": 0, "agent": 50}
    assert counts.open_flags_by_reason["low_confidence"] == 200


async def test_customer_details_are_kept_apart_per_turn_until_forgotten(
    make_store: StoreFactory,
) -> None:
    clock = Clock(1_000.0)
    store = await make_store(clock)
    conversation = await store.create_conversation("web")
    other = await store.create_conversation("web")
    written = (CustomerDetail("email", "ana@example.com"), CustomerDetail("name", "Ana Ruiz"))
    old = await store.add_turn(conversation.id, "customer", "I'm [NAME]: [EMAIL]", details=written)
    clock.now += 10 * 86_400.0
    new = await store.add_turn(
        conversation.id, "customer", "or [PHONE]", details=[CustomerDetail("phone", "555-0100")]
    )
    await store.add_turn(
        other.id, "customer", "[EMAIL]", details=[CustomerDetail("email", "x@y.z")]
    )

    async def details(conversation_id: str) -> dict[str, list[CustomerDetail]]:
        return await store.database.read(
            lambda conn: conversation_extras(conn, conversation_id).details
        )

    # The turn itself keeps only the placeholders; each conversation reads its own.
    assert [t.text for t in await store.list_turns(conversation.id)] == [
        "I'm [NAME]: [EMAIL]",
        "or [PHONE]",
    ]
    assert await details(conversation.id) == {
        old.id: list(written),
        new.id: [CustomerDetail("phone", "555-0100")],
    }
    # Five days: the ten-day-old ones go, the others stay.
    assert await store.forget_customer_details(5 * 86_400.0) == 2
    assert await details(conversation.id) == {new.id: [CustomerDetail("phone", "555-0100")]}
    assert await store.forget_customer_details(0) == 2  # 0 days: none is kept
    assert await details(conversation.id) == {} and await details(other.id) == {}


async def test_a_closed_store_refuses_work(make_store: StoreFactory) -> None:
    store = await make_store()
    await store.create_conversation("web")
    await store.aclose()
    await store.aclose()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        await store.create_conversation("web")
