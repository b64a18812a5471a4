"""`supportbot scrub` on a home an earlier release filled: names and sentence-final e-mails
in the stored logs, in entries only older index versions serve, in curated answers and in
live conversations are gone afterwards; the new index still answers; a second run changes
nothing; a dry run writes nothing; a run killed half-way leaves the live index serving and
a rerun finishes the job."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.core.types import FlagReason, Outcome, Rating
from bot.store.conversations import ConversationDatabase
from bot.store.rescrub import rescrub_conversation_store
from retrieval.ingest import ingest_paths
from retrieval.knowledge import KnowledgeBase
from retrieval.names import NameFinder
from retrieval.rescrub import Rescrubber, rescrub_knowledge
from tests.support.corpus import REPO, SMALL_LOGS, write_jsonl
from tests.support.fakes import source
from tests.support.store_reads import get_rating

MakeKB = Callable[..., KnowledgeBase]
runner = CliRunner()

# What an earlier release left: it scrubbed neither names nor an e-mail ending a sentence.
QUESTION = "My tent pole snapped on the first night, can I get a replacement pole?"
PLANTED = ("Julia", "Keiko", "julia.roe@example.com")
SHOP_PHONE = "+1 415 555 0100"


def _julia(grown: bool = False) -> dict[str, object]:
    messages = [
        {"role": "customer", "text": f"{QUESTION} Write to julia.roe@example.com."},
        {
            "role": "agent",
            "text": "Hi Julia,\nSorry about that! We send replacement poles for free"
            " within 2 days (KB-TNT-04).\nBest,\nKeiko",
        },
    ]
    if grown:
        messages += [
            {"role": "customer", "text": "Thanks! Does the pole fit the 2-person model too?"},
            {"role": "agent", "text": "Hi Julia,\nYes, both models take it.\nBest,\nKeiko"},
        ]
    return {"id": "c-julia", "messages": messages}


CURATED_QUESTION = "Do you rent out camping stoves? I'm Julia Roe."
CURATED_ANSWERS = (
    "Hi Julia,\nWe don't rent stoves yet.\nBest,\nKeiko",  # replaced: a deleted row
    f"Hi Julia,\nStoves rent for $12/day; call {SHOP_PHONE}.\nBest,\nKeiko",
)


def _old_home(tmp_path: Path, kb: KnowledgeBase) -> None:
    """Logs ingested twice (the second time grown, so version 1 holds a now deleted entry)
    and a curated answer replaced once, all with names, as an earlier release stored them."""
    first = write_jsonl(tmp_path / "first.jsonl", [*SMALL_LOGS, _julia()])
    ingest_paths([first], kb, scrub_pii=False)
    ingest_paths([write_jsonl(tmp_path / "grown.jsonl", [_julia(grown=True)])], kb, scrub_pii=False)
    for answer in CURATED_ANSWERS:
        kb.add_curated("correction:1", CURATED_QUESTION, answer)


async def _old_conversation(store: ConversationDatabase) -> str:
    """A live conversation stored before names were scrubbed: the customer's turn, a reply
    copied from Julia's exchange, a rated and flagged reply, and the operator's correction;
    returns its id."""
    conversation = await store.create_conversation("web")
    await store.add_turn(
        conversation.id,
        "customer",
        "Hi, I'm Julia Roe. Order JO-482913 never came, mail julia.roe@example.com.",
    )
    reply = await store.add_turn(
        conversation.id,
        "bot",
        "Hi Julia,\nIt ships tomorrow.\nBest,\nKeiko",
        outcome=Outcome.COPIED,
        sources=[source("c-julia#1", "Hi, I'm Julia. Where is it?", "Hi Julia,\nSoon.")],
    )
    await store.add_rating(Rating(reply.id, "down", "Keiko was no help", "web"))
    await store.add_flag(reply.id, FlagReason.THUMBS_DOWN, "Keiko was no help")
    await store.add_correction(
        "Hi, I'm Julia Roe. Order JO-482913 never came.",
        f"Hi Julia,\nOrder JO-482913 ships tomorrow; call {SHOP_PHONE}.\nBest,\nKeiko",
        created_by="ana",
        turn_id=reply.id,
    )
    return conversation.id


def _everything_stored(database: Path) -> str:
    """Every text in every table of the home's SQLite file."""
    with sqlite3.connect(database) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(
            str(value)
            for table in tables
            for row in conn.execute(f"SELECT * FROM {table}")
            for value in row
            if isinstance(value, str)
        )


def _run(home: Path, *args: str) -> str:
    result = runner.invoke(app, ["--home", str(home), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def rules_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTBOT_RETRIEVAL__NAME_RECOGNIZER", "rules")


@pytest.mark.usefixtures("rules_only")
def test_scrub_command_rescrubs_an_old_home_once(tmp_path: Path, make_knowledge: MakeKB) -> None:
    home = tmp_path / "home"
    kb = make_knowledge("home")
    _old_home(tmp_path, kb)
    kb.close()
    asyncio.run(_with_sqlite_store(home / "supportbot.db", _old_conversation))
    database = home / "supportbot.db"
    stored = _everything_stored(database)
    assert all(planted in stored for planted in PLANTED)
    with sqlite3.connect(database) as conn:
        (version_before,) = conn.execute("SELECT id FROM index_versions WHERE is_live").fetchone()

    dry = _run(home, "scrub", "--dry-run", "--no-progress")
    assert _everything_stored(database) == stored
    assert not (home / "indexes" / "known_names.json").exists()

    report = _run(home, "scrub", "--no-progress")
    # The dry run counted what the run then did, and only the run published an index.
    assert dry.splitlines()[0] == "dry run: nothing was written"
    assert dry.replace("would change", "changed").splitlines()[1:] == report.splitlines()[1:-1]
    assert report.splitlines()[:-2] == [
        "scrubbed again",
        f"log conversations changed: 1 of {len(SMALL_LOGS) + 1}",
        # c-julia#1 deleted by the second ingest, c-julia#1 and #2 replaced now, and the
        # curated answer replaced before.
        "index entries rewritten in place: 4",
        "curated answers changed: 1",
        "turns changed: 1 customer, 1 bot replies, 1 replies' sources",
        "rating comments changed: 1, flag notes: 1",
        "corrections changed: 1",
    ]
    replaced = dict(
        reversed(kind.split()) for kind in report.splitlines()[-2].split(": ")[1].split(", ")
    )
    # The e-mail in Julia's conversation, in three of its entries, and in her live turn;
    # her order number in the correction's question and answer; names in every place.
    assert (replaced["email"], replaced["reference"]) == ("5", "2") and int(replaced["name"]) > 9
    assert report.splitlines()[-1].startswith(f"index: version {version_before + 1} published")

    scrubbed = _everything_stored(database)
    assert not any(planted in scrubbed for planted in PLANTED)
    assert "Roe" not in scrubbed
    with sqlite3.connect(database) as conn:
        answers = [r[0] for r in conn.execute("SELECT answer FROM bot_corrections")]
        curated = conn.execute(
            "SELECT agent_reply FROM entries WHERE kind = 'curated' AND deleted_at IS NULL"
        ).fetchone()[0]
        live = conn.execute("SELECT id FROM index_versions WHERE is_live").fetchone()[0]
    # Names only in what operators wrote: the shop's phone number stays; the customer's
    # order number goes.
    assert answers == [f"Hi,\nOrder [REFERENCE] ships tomorrow; call {SHOP_PHONE}.\nBest,"]
    assert curated == f"Hi,\nStoves rent for $12/day; call {SHOP_PHONE}.\nBest,"
    assert live == version_before + 1

    hits = _run(home, "search", QUESTION, "-k", "1")
    assert hits.splitlines()[0].endswith("c-julia#1") and "replacement poles" in hits
    assert "camping stove" in _run(home, "search", "can I rent a stove?", "-k", "1")

    again = _run(home, "scrub", "--no-progress").splitlines()
    assert again[1:8] == [
        f"log conversations changed: 0 of {len(SMALL_LOGS) + 1}",
        "index entries rewritten in place: 0",
        "curated answers changed: 0",
        "turns changed: 0 customer, 0 bot replies, 0 replies' sources",
        "rating comments changed: 0, flag notes: 0",
        "corrections changed: 0",
        "PII replaced: none",
    ]
    assert again[-1].startswith(f"index: version {live} unchanged")
    assert _everything_stored(database) == scrubbed


async def _with_sqlite_store(database: Path, work: Callable[..., Awaitable[object]]) -> None:
    store = ConversationDatabase(database)
    try:
        await work(store)
    finally:
        await store.aclose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_job_rescrubs_both_backends(
    tmp_path: Path, make_knowledge: MakeKB, backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    kb = make_knowledge(postgres_url=url)
    await asyncio.to_thread(_old_home, tmp_path, kb)
    database = tmp_path / "home" / "supportbot.db"
    store = ConversationDatabase(database) if url is None else ConversationDatabase(url)
    await store.open()
    try:
        conversation_id = await _old_conversation(store)
        names = NameFinder(recognizer=None)
        knowledge = await asyncio.to_thread(rescrub_knowledge, kb, Rescrubber(names))
        conversations = await rescrub_conversation_store(store, Rescrubber(names))
        assert (knowledge.conversations, knowledge.entries, knowledge.curated) == (1, 4, 1)
        assert sum(conversations.changed.values()) == 7 and conversations.corrections == {1}

        assert {"Julia", "Keiko"} <= names.known_names
        for stored in kb.store.entries_by_id(range(1, 100)).values():
            text = repr(stored.entry)
            assert not any(planted in text for planted in PLANTED), text
        for conversation in kb.store.iter_conversations():
            assert not any(p in repr(conversation.messages) for p in PLANTED)
        (correction,) = await store.list_corrections()
        (customer, reply) = await store.list_turns(conversation_id)
        assert "Julia" not in customer.text and "JO-482913" in customer.text
        assert reply.text == "Hi,\nIt ships tomorrow.\nBest,"
        assert reply.sources[0].agent_reply == "Hi,\nSoon."
        assert (await get_rating(store, reply.id)).comment == "[NAME] was no help"  # type: ignore[union-attr]
        assert correction.answer == (
            f"Hi,\nOrder [REFERENCE] ships tomorrow; call {SHOP_PHONE}.\nBest,"
        )
        assert kb.search((), QUESTION, 1)[0].source_id == "c-julia#1"

        again = await rescrub_conversation_store(store, Rescrubber(names))
        assert sum(again.changed.values()) == 0
    finally:
        await store.aclose()


# The child rescrubs with the in-place rewrite replaced by a SIGKILL: the conversations are
# stored again (their old entries deleted), nothing is published yet.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from retrieval.config import RetrievalConfig
    from retrieval.knowledge import KnowledgeBase
    from retrieval.names import NameFinder
    from retrieval.rescrub import Rescrubber, rescrub_knowledge
    from retrieval.store import KnowledgeStore

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    KnowledgeStore.rewrite_entries = die
    home = Path(sys.argv[1])
    kb = KnowledgeBase.open(home / "supportbot.db", home / "indexes", RetrievalConfig())
    rescrub_knowledge(kb, Rescrubber(NameFinder(recognizer=None)))
    """
)


def test_a_killed_run_keeps_the_live_index_and_a_rerun_finishes(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    kb = make_knowledge()
    _old_home(tmp_path, kb)
    live_before = kb.store.live_index_version()
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "home")], cwd=REPO, check=False
    )
    assert child.returncode == -signal.SIGKILL

    after_kill = make_knowledge()
    assert after_kill.store.live_index_version() == live_before
    assert after_kill.search((), "When will my order arrive?", 1)[0].source_id == "c-ship#1"
    leftovers = repr([s.entry for s in after_kill.store.entries_by_id(range(1, 100)).values()])
    assert "Julia" in leftovers  # the deleted rows are not rewritten yet

    report = rescrub_knowledge(after_kill, Rescrubber(NameFinder(recognizer=None)))
    assert report.conversations == 0 and report.entries > 0
    assert report.sync is not None and report.sync.version is not None
    assert report.sync.version.id == live_before.id + 1  # type: ignore[union-attr]
    done = repr([s.entry for s in after_kill.store.entries_by_id(range(1, 100)).values()])
    assert not any(planted in done for planted in PLANTED)
    assert after_kill.search((), QUESTION, 1)[0].source_id == "c-julia#1"
