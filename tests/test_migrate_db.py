"""`supportbot migrate-db`: a SQLite installation moved into a real PostgreSQL server with
every conversation, turn, rating, flag and correction (and the Slack adapter's threads,
the model registry, the retraining cycles, the knowledge base and the dashboard's
accounts), run again safely."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.core.types import FlagReason, FlagStatus, Outcome, Rating
from bot.ops.storage import DashboardStore, ReviewAction
from bot.slack.state import HandoffPost, SlackState, Thread
from bot.store.conversations import ConversationDatabase
from finetune.cycles import CycleLog
from finetune.pipeline import GeneratorPaths
from finetune.registry import ModelRegistry
from retrieval.config import RetrievalConfig
from retrieval.embedder import Embedder
from retrieval.ingest import ingest_paths
from retrieval.knowledge import KnowledgeBase
from tests.support.corpus import SMALL_LOGS, exchange, write_jsonl
from tests.support.dashboard import PASSWORD
from tests.support.fakes import source
from tests.support.store_reads import get_rating, list_flags, resolve_flag

REPO = Path(__file__).resolve().parent.parent

runner = CliRunner()


async def _seed(path: Path, conversations: int) -> None:
    """Conversations with a question and a reply each; every reply rated, every third
    flagged, and two corrections."""
    store = ConversationDatabase(path)
    try:
        for n in range(conversations):
            conversation = await store.create_conversation("web" if n % 2 else "slack", f"r{n}")
            await store.add_turn(conversation.id, "customer", f"question {n} — ünïcode")
            reply = await store.add_turn(
                conversation.id,
                "bot",
                f"reply {n}",
                outcome=Outcome.GENERATED,
                confidence=0.5,
                sources=(source(f"c{n}#1", "q", "a", 0.9),),
                latency_ms=12.5,
                index_version="3",
                model_version="adapter-1",
            )
            await store.add_rating(Rating(reply.id, "up" if n % 3 else "down", "meh"))
            if n % 3 == 0:
                await store.add_flag(reply.id, FlagReason.THUMBS_DOWN, f"flag {n}")
        flagged = await list_flags(store)
        gift = await store.add_correction("Do gift cards expire?", "Never.", created_by="ana")
        mistake = await store.add_correction(
            "question 0", "A better reply.", created_by="bo", turn_id=flagged[0].turn_id
        )
        # Who edited or withdrew a correction is copied too: a withdrawn one stays so.
        await store.edit_correction(gift.id, gift.question, "They never expire.", edited_by="bo")
        # The questions attached to it are served under correction:<id>:<n> there too.
        await store.attach_questions(
            gift.id, ["gift card expiry?", "do vouchers run out"], attached_by="bo"
        )
        await store.withdraw_correction(mistake.id, withdrawn_by="ana")
    finally:
        await store.aclose()


async def _snapshot(
    store: ConversationDatabase,
) -> dict[str, object]:
    """Everything a user of the store can read, in a comparable form."""
    await store.open()
    try:
        flags = await list_flags(store, status=None, limit=10_000)
        conversations = {}
        for flag in flags:
            turns = await store.list_turns(flag.conversation_id)
            conversations[flag.conversation_id] = (
                turns,
                [await get_rating(store, t.id) for t in turns],
            )
        return {
            "counts": await store.counts(),
            "flags": flags,
            "corrections": await store.list_corrections(),
            "attached": [
                await store.attached_questions(c.id) for c in await store.list_corrections()
            ],
            "conversations": conversations,
        }
    finally:
        await store.aclose()


def _migrate(home: Path, source_db: Path, url: str) -> tuple[int, str]:
    result = runner.invoke(
        app, ["--home", str(home), "migrate-db", "--from", f"sqlite:///{source_db}", "--to", url]
    )
    return result.exit_code, result.output


def test_migrate_db_copies_everything_and_counts_both_sides(
    tmp_path: Path, postgres_url: str
) -> None:
    source_db = tmp_path / "old" / "supportbot.db"
    asyncio.run(_seed(source_db, conversations=30))

    code, output = _migrate(tmp_path / "home", source_db, postgres_url)
    assert code == 0, output
    assert "every table has the same number of rows on both sides" in output
    copied = (("bot_turns", 60), ("bot_ratings", 30), ("bot_flags", 10))
    for table, rows in (*copied, ("bot_correction_questions", 2)):
        assert any(line.split() == [table, str(rows), str(rows)] for line in output.splitlines())

    before = asyncio.run(_snapshot(ConversationDatabase(source_db)))
    after = asyncio.run(_snapshot(ConversationDatabase(postgres_url)))
    assert after == before  # same ids, texts, sources, ratings, flag states and corrections


def test_migrate_db_again_carries_changes_made_since_and_keeps_ids_unique(
    tmp_path: Path, postgres_url: str
) -> None:
    source_db = tmp_path / "old" / "supportbot.db"
    asyncio.run(_seed(source_db, conversations=6))
    assert _migrate(tmp_path / "home", source_db, postgres_url)[0] == 0

    async def keep_serving() -> None:  # the old server keeps working between the two runs
        store = ConversationDatabase(source_db)
        flag = (await list_flags(store))[0]
        await resolve_flag(store, flag.id, FlagStatus.APPROVED, "ana")
        conversation = await store.create_conversation("web", "late")
        await store.add_turn(conversation.id, "customer", "one more question")
        await store.aclose()

    asyncio.run(keep_serving())
    code, output = _migrate(tmp_path / "home", source_db, postgres_url)
    assert code == 0, output
    before = asyncio.run(_snapshot(ConversationDatabase(source_db)))
    after = asyncio.run(_snapshot(ConversationDatabase(postgres_url)))
    assert after == before
    assert after["counts"].turns_by_role["customer"] == 7  # type: ignore[attr-defined]

    async def correct_in_postgres() -> tuple[int, int]:
        store = ConversationDatabase(postgres_url)
        await store.open()
        correction = await store.add_correction("new?", "yes", created_by="ana")
        conversation = await store.create_conversation("web")
        turn = await store.add_turn(conversation.id, "bot", "x")
        await store.add_flag(turn.id, FlagReason.HANDOFF)
        flag = (await list_flags(store, reason=FlagReason.HANDOFF))[0]
        await store.aclose()
        return correction.id, flag.id

    correction_id, flag_id = asyncio.run(correct_in_postgres())
    assert correction_id == 3  # after the two copied ones: the sequence moved past them
    assert flag_id == 3


def test_migrate_db_carries_the_slack_threads_so_they_continue_on_the_replicas(
    tmp_path: Path, postgres_url: str
) -> None:
    source_db = tmp_path / "old" / "supportbot.db"
    asyncio.run(_seed(source_db, conversations=3))
    thread = Thread("CSUPPORT", "1699000000.000001")

    async def slack_was_used() -> str:
        store = ConversationDatabase(source_db)
        conversation = await store.create_conversation("slack", thread.external_ref)
        reply = await store.add_turn(conversation.id, "bot", "An answer.")
        await store.aclose()
        state = SlackState(f"sqlite:///{source_db}")
        await state.remember_thread(thread, conversation.id, "UCUSTOMER")
        await state.remember_reply("CSUPPORT", "1699000000.000002", reply.id, conversation.id)
        await state.remember_handoff_post(HandoffPost("COPS", "1699000001.1", conversation.id))
        assert await state.claim("event:Ev1", 3600)
        await state.aclose()
        return conversation.id

    conversation_id = asyncio.run(slack_was_used())
    code, output = _migrate(tmp_path / "home", source_db, postgres_url)
    assert code == 0, output
    assert any(line.split() == ["slack_threads", "1", "1"] for line in output.splitlines())

    async def on_postgres() -> None:
        state = SlackState(postgres_url)
        await state.open()
        known = await state.known_thread(thread)
        assert known is not None and known.conversation_id == conversation_id
        assert await state.turn_of_message("CSUPPORT", "1699000000.000002") is not None
        post = await state.latest_handoff_post(conversation_id)
        assert post == HandoffPost("COPS", "1699000001.1", conversation_id)
        assert not await state.claim("event:Ev1", 3600)  # a retry after the move: handled
        await state.aclose()

    asyncio.run(on_postgres())


def test_migrate_db_fails_loudly_when_the_source_is_missing(
    tmp_path: Path, postgres_url: str
) -> None:
    code, output = _migrate(tmp_path / "home", tmp_path / "nope.db", postgres_url)
    assert code == 2 and "no SQLite database" in output
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    code, output = _migrate(tmp_path / "home", empty, postgres_url)
    assert code == 2 and "holds no conversation store" in output
    result = runner.invoke(app, ["--home", str(tmp_path), "migrate-db", "--to", "mysql://x"])
    assert result.exit_code == 2 and "postgresql://" in result.output


def test_migrate_db_fails_when_the_counts_differ(tmp_path: Path, postgres_url: str) -> None:
    """A target that already holds other conversations cannot match: say so, exit 1."""

    async def stray_conversation() -> None:
        store = ConversationDatabase(postgres_url)
        await store.open()
        await store.create_conversation("web", "not in the source")
        await store.aclose()

    asyncio.run(stray_conversation())
    source_db = tmp_path / "old" / "supportbot.db"
    asyncio.run(_seed(source_db, conversations=3))
    code, output = _migrate(tmp_path / "home", source_db, postgres_url)
    assert code == 1
    assert "bot_conversations: 3 in the source, 4 in PostgreSQL" in output
    assert "<- differs" in output


def test_migrate_db_carries_the_model_registry_and_the_cycles_with_their_ids(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every replica then serves the adapter that was live, finds its folder under its own
    home (the jobs were given the home relative to their working directory), and lists the
    same cycles; new records get new ids."""
    source_db = tmp_path / "old" / "supportbot.db"
    asyncio.run(_seed(source_db, conversations=1))
    monkeypatch.chdir(tmp_path)
    as_the_jobs_named_it = GeneratorPaths.under(Path("old"))
    registry = ModelRegistry.open(as_the_jobs_named_it)
    cycles = CycleLog.open(as_the_jobs_named_it)
    try:
        folder = as_the_jobs_named_it.base_models / "gpt-0001"
        base = registry.register_base(folder, source="bootstrap", model_ref=str(folder))
        hub = registry.register_base(Path("org/model"), source="pretrained", model_ref="org/model")
        first = registry.register_adapter(as_the_jobs_named_it.adapters / "v0001", base_id=base.id)
        second = registry.register_adapter(
            as_the_jobs_named_it.adapters / "v0002", base_id=base.id, parent_id=first.id
        )
        registry.promote(first.id)
        cycle = cycles.start(owner="pid 1 on a", live_adapter_id=first.id, data={"approved": 2})
        cycles.set_candidate(cycle, second.id)
        registry.promote(second.id)
        cycles.finish(cycle, status="promoted", reason="better", figures={"tolerance": 0.02})
        rollback = cycles.record_rollback(from_id=second.id, to_id=first.id, reason="back")
        registry.promote(first.id)
        before = cycles.cycles()
    finally:
        cycles.close()
        registry.close()
    monkeypatch.chdir(REPO)  # migrate-db runs from elsewhere

    code, output = _migrate(tmp_path / "home", source_db, postgres_url)
    assert code == 0, output
    for table, rows in (
        ("finetune_base_models", 2),
        ("finetune_adapters", 2),
        ("finetune_live", 1),
        ("finetune_live_history", 3),
        ("retrain_cycles", 2),
    ):
        assert [table, str(rows), str(rows)] in [line.split() for line in output.splitlines()]
    assert _migrate(tmp_path / "home", source_db, postgres_url)[0] == 0  # again: the same

    replica = GeneratorPaths.under(tmp_path / "replica-home", postgres_url=postgres_url)
    registry = ModelRegistry.open(replica)
    cycles = CycleLog.open(replica)
    try:
        live = registry.live_adapter()
        assert live is not None and live.id == first.id
        assert live.folder == replica.adapters / "v0001"
        assert registry.adapter(second.id).parent_id == first.id
        assert registry.base(base.id).model_ref == str(replica.base_models / "gpt-0001")
        assert registry.base(hub.id).model_ref == "org/model"
        assert cycles.cycles() == before
        assert cycles.cycle(rollback.id).candidate_adapter_id == first.id
        # The sequences moved past the copied ids.
        third = registry.register_adapter(replica.adapters / "v0003", base_id=base.id)
        assert third.id == second.id + 1
        assert cycles.start(owner="pid 2 on b", live_adapter_id=live.id, data={}) == rollback.id + 1
        registry.promote(third.id)
        assert registry.live_adapter() == registry.adapter(third.id)
    finally:
        cycles.close()
        registry.close()


def test_migrate_db_carries_the_knowledge_base_with_its_ids(
    tmp_path: Path,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    make_knowledge: Callable[..., KnowledgeBase],
    embedder: Embedder,
) -> None:
    """A replica on another host (its own home path, the index folders mounted in it) then
    serves the index version that was live, with the curated answers made since, without
    embedding anything again; entry ids (the FAISS ids) and version ids are kept and new
    ones come after them."""
    source_db = tmp_path / "old" / "supportbot.db"
    asyncio.run(_seed(source_db, conversations=1))
    monkeypatch.chdir(tmp_path)  # the jobs were given the home relative to this folder
    as_the_jobs_named_it = Path("old")
    old = KnowledgeBase.open(
        as_the_jobs_named_it / "supportbot.db",
        as_the_jobs_named_it / "indexes",
        RetrievalConfig(),
        embedder,
    )
    try:
        ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], old)
        question = "Do you rent out camping stoves for a weekend?"
        old.add_curated("correction:1", question, "Stoves rent for $12/day (KB-RNT-01).")
        stove = old.add_curated("correction:1", question, "Stove rental is $10/day.")
        tent = [exchange("t1", "Is the Summit tent waterproof?", "Yes, 3000 mm (KB-TNT-01).")]
        ingest_paths([write_jsonl(tmp_path / "tent.jsonl", tent)], old)
        live = old.rollback()  # the first version, with the curated answer replayed
        conversations = [c.id for c in old.store.iter_conversations()]
        versions = old.store.index_versions()
    finally:
        old.close()
    monkeypatch.chdir(REPO)

    code, output = _migrate(tmp_path / "home", source_db, postgres_url)
    assert code == 0, output
    rows = [line.split() for line in output.splitlines()]
    for table, count in (("log_conversations", 7), ("entries", 10), ("index_versions", 2)):
        assert [table, str(count), str(count)] in rows
    assert _migrate(tmp_path / "home", source_db, postgres_url)[0] == 0  # again: the same

    replica_home = tmp_path / "replica-home"
    replica_home.mkdir()
    (replica_home / "indexes").symlink_to(tmp_path / "old" / "indexes")
    replica = make_knowledge("replica-home", postgres_url=postgres_url)
    replica.load()
    assert replica.version is not None and replica.version.id == live.id
    assert replica.version.folder == replica_home / "indexes" / "v0001"
    assert [v.id for v in replica.store.index_versions()] == [v.id for v in versions]
    assert [c.id for c in replica.store.iter_conversations()] == conversations
    hit = replica.search((), "can I rent a camp stove?", 1)[0]
    assert (hit.source_id, hit.agent_reply) == ("correction:1", "Stove rental is $10/day.")
    assert replica.store.entry_ids_of_source("correction:1")[0] == {stove}
    assert replica.search((), "is the Summit tent waterproof?", 1)[0].source_id != "t1#1"
    # Every vector came along: a full rebuild embeds nothing. New ids follow the copied ones.
    rebuilt = replica.reembed(embedder)
    assert rebuilt.embedded == 0
    assert rebuilt.version is not None and rebuilt.version.id == versions[-1].id + 1
    assert replica.add_curated("correction:2", "Gift wrap?", "3 EUR (KB-GFT-02).") == stove + 2


def test_migrate_db_carries_the_dashboards_accounts_sessions_and_review_log(
    tmp_path: Path, postgres_url: str
) -> None:
    """Operators log in on any replica with the password they had, a session started before
    the move stays valid, and the review log reads the same; new ids follow the copied."""
    source_db = tmp_path / "old" / "supportbot.db"
    asyncio.run(_seed(source_db, conversations=1))
    before = DashboardStore.open(source_db)
    try:
        ana = before.add_operator("ana", PASSWORD)
        before.add_operator("bo", PASSWORD)
        token, session = before.start_session(ana, 3600)
        first = before.log_action("ana", ReviewAction.APPROVE, "c1", "t1")
        second = before.log_action("bo", ReviewAction.CORRECT, "c1", "t2", "correction:1")
    finally:
        before.close()

    code, output = _migrate(tmp_path / "home", source_db, postgres_url)
    assert code == 0, output
    rows = [line.split() for line in output.splitlines()]
    for table, count in (("ops_operators", 2), ("ops_sessions", 1), ("ops_actions", 2)):
        assert [table, str(count), str(count)] in rows
    assert _migrate(tmp_path / "home", source_db, postgres_url)[0] == 0  # again: the same

    after = DashboardStore.open(tmp_path / "replica" / "supportbot.db", postgres_url=postgres_url)
    try:
        assert after.session(token) == session
        assert after.authenticate("ANA", PASSWORD) == ana
        assert after.actions_for("c1") == [first, second]
        assert after.add_operator("cy", PASSWORD).id == 3
        assert after.log_action("cy", ReviewAction.REPLY, "c2").id == second.id + 1
    finally:
        after.close()
