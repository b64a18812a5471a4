"""Two replicas of the server on loopback sharing one real PostgreSQL (with the knowledge
base) and the index folders, each with its own home folder as on two hosts: conversations
continue across them, a correction made on one is served by the other
(added to its live index, or replayed after a missed announcement), and a retraining
cycle started on both runs once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from bot.app import KNOWLEDGE, create_app
from bot.core.engine import ConversationEngine
from bot.replicas import CURATED_FOLLOWER
from bot.settings import Settings, load_settings
from bot.web import ENGINE
from bot.web.config import WebConfig
from finetune.cycles import CycleLockedError, retrain_lock


@pytest.fixture
def indexed_home(
    tmp_path: Path, make_knowledge: Callable[..., Any], postgres_url: str
) -> Iterator[Path]:
    """A home whose knowledge base (in the replicas' PostgreSQL) has the small logs."""
    from retrieval.ingest import ingest_paths
    from tests.support.corpus import SMALL_LOGS, write_jsonl

    kb = make_knowledge("home", postgres_url=postgres_url)
    logs = cast("list[dict[str, object]]", SMALL_LOGS)
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", logs)], kb)
    yield tmp_path / "home"


def replica_settings(home: Path, url: str) -> Settings:
    return load_settings(
        home=home,
        web=WebConfig(rate_per_minute=100_000, rate_burst=100_000),
        engine={"answer_mode": "copy"},
        storage={"database_url": url},
    )


async def start(client: Any) -> str:
    created = await client.post("/api/conversations")
    assert created.status in (200, 201)
    return cast(str, (await created.json())["conversation_id"])


async def ask(client: Any, conversation_id: str, text: str) -> dict[str, Any]:
    response = await client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"text": text},
        headers={"Accept": "application/json"},
    )
    assert response.status == 200, await response.text()
    return cast(dict[str, Any], await response.json())


async def test_two_replicas_share_conversations_and_corrections(
    aiohttp_client: Any, indexed_home: Path, postgres_url: str
) -> None:
    # B runs as on another host: its own home folder, the index folders mounted into it.
    other_host = indexed_home.parent / "other-host"
    other_host.mkdir()
    (other_host / "indexes").symlink_to(indexed_home / "indexes")
    replica_a = await aiohttp_client(create_app(replica_settings(indexed_home, postgres_url)))
    replica_b = await aiohttp_client(create_app(replica_settings(other_host, postgres_url)))

    # A conversation started on A continues on B (a load balancer may send it anywhere).
    conversation_id = await start(replica_a)
    first = await ask(replica_a, conversation_id, "do gift cards ever expire?")
    assert "never expire" in first["reply"]
    second = await ask(replica_b, conversation_id, "and when will my order arrive?")
    assert "3-5 business days" in second["reply"]
    turns = await (await replica_b.get(f"/api/conversations/{conversation_id}/turns")).json()
    assert [t["text"] for t in turns["turns"] if t["role"] == "customer"] == [
        "do gift cards ever expire?",
        "and when will my order arrive?",
    ]

    # An operator corrects A's reply on A; B serves the correction within seconds, by
    # adding that one entry to its live index, not by reloading the index.
    question = "Can I pay with PayPal?"
    before = await ask(replica_b, await start(replica_b), question)
    assert "KB-PAY-09" not in before["reply"]
    knowledge_b, follower_b = replica_b.app[KNOWLEDGE], replica_b.app[CURATED_FOLLOWER]
    loads_before = knowledge_b.loads
    engine_a = cast(ConversationEngine, replica_a.app[ENGINE])
    paypal = await engine_a.correct(
        first["turn_id"],
        "Yes, PayPal is accepted at checkout (KB-PAY-09).",
        created_by="ana",
        question=question,
    )
    served = await served_by(replica_b, "can I pay with paypal?", "KB-PAY-09")
    assert served["sources"][0]["source_id"].startswith("correction:")
    assert (follower_b.sources_followed, follower_b.full_replays) == (1, 0)
    assert knowledge_b.loads == loads_before

    # Withdrawn on A, it leaves B's live index the same way.
    await engine_a.withdraw_correction(paypal.id, withdrawn_by="ana")
    await served_by(replica_b, "can I pay with paypal?", "KB-PAY-09", present=False)
    assert (follower_b.sources_followed, follower_b.full_replays) == (2, 0)
    assert knowledge_b.loads == loads_before

    # A correction announced while B's channel is down is missed; B catches up by
    # replaying every curated answer once it has reconnected.
    await terminate_listeners(postgres_url)
    await engine_a.correct(
        second["turn_id"],
        "Gift wrapping costs 3 EUR per parcel (KB-GIFT-02).",
        created_by="ana",
        question="Do you offer gift wrapping?",
    )
    await served_by(replica_b, "do you offer gift wrapping?", "KB-GIFT-02")
    # B's index poll may serve it before the reconnected listener's replay has run: wait
    # for the replay itself, which is what catches up whatever else was missed.
    deadline = time.monotonic() + 10.0
    while follower_b.full_replays < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert follower_b.full_replays >= 1 and knowledge_b.loads > loads_before


async def served_by(
    replica: Any, question: str, expected: str, *, present: bool = True
) -> dict[str, Any]:
    """The reply of ``replica`` to ``question`` once it contains ``expected`` (once it no
    longer does, with ``present`` False); 10 s at most."""
    served: dict[str, Any] = {}
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        # A new conversation each time: an unanswerable question hands the last one off.
        served = await ask(replica, await start(replica), question)
        if (expected in served["reply"]) == present:
            return served
        await asyncio.sleep(0.2)
    raise AssertionError(f"{expected} served: {not present}; last: {served.get('reply')!r}")


async def terminate_listeners(url: str) -> None:
    """Cut every replica's LISTEN connection, as a network fault or a failover would."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN %'"
        )
        assert len(await cursor.fetchall()) == 2  # A's and B's


def test_a_retrain_started_on_two_replicas_runs_once(postgres_url: str) -> None:
    ran: list[str] = []
    refused: list[str] = []
    holding = threading.Event()

    def cycle(replica: str) -> None:
        try:
            with retrain_lock(postgres_url):
                ran.append(replica)
                holding.set()
                time.sleep(1.0)
        except CycleLockedError:
            refused.append(replica)

    first = threading.Thread(target=cycle, args=("a",))
    first.start()
    assert holding.wait(10.0)
    cycle("b")  # while a's cycle runs
    first.join()
    assert (ran, refused) == (["a"], ["b"])
    cycle("b")  # a finished: the next cycle may run
    assert ran == ["a", "b"]


def test_a_killed_cycle_does_not_keep_the_lock(postgres_url: str) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom finetune.cycles import retrain_lock\n"
            "with retrain_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)",
            postgres_url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(CycleLockedError), retrain_lock(postgres_url):
            pass
    finally:
        holder.kill()
        holder.wait()
    for _ in range(50):  # the server notices the dropped connection at once, or nearly
        try:
            with retrain_lock(postgres_url):
                return
        except CycleLockedError:
            time.sleep(0.1)
    pytest.fail("the lock of a killed process was never released")


def test_a_cycle_learns_from_the_feedback_kept_in_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    from bot.core.types import FlagReason, FlagStatus
    from bot.feedback import export_feedback
    from bot.store.conversations import ConversationDatabase

    async def review() -> None:
        store = ConversationDatabase(postgres_url)
        await store.open()
        conversation = await store.create_conversation("web")
        await store.add_turn(conversation.id, "customer", "do gift cards expire?")
        reply = await store.add_turn(conversation.id, "bot", "Never.")
        await store.add_flag(reply.id, FlagReason.LOW_CONFIDENCE)
        await store.resolve_turn_flags(reply.id, FlagStatus.APPROVED, "ana")
        await store.add_correction("PayPal?", "Yes (KB-PAY-09).", created_by="ana")
        await store.aclose()

    asyncio.run(review())
    records = export_feedback(tmp_path / "unused.db", postgres_url=postgres_url)
    assert [(r.kind, r.customer_text, r.reply) for r in records] == [
        ("approved", "do gift cards expire?", "Never."),
        ("corrected", "PayPal?", "Yes (KB-PAY-09)."),
    ]
