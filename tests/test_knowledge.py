"""The knowledge base with the real embedder and real SQLite files."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from retrieval.ingest import ingest_paths
from retrieval.knowledge import KnowledgeBase, Query
from retrieval.parsers import UnsupportedLogFormat
from retrieval.records import LogMessage
from tests.support.corpus import SMALL_LOGS, exchange, write_jsonl

MakeKB = Callable[..., KnowledgeBase]


def test_ingest_then_search_finds_the_matching_reply(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    kb = make_knowledge()
    report = ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], kb)
    assert report.conversations_added == len(SMALL_LOGS)
    assert report.entries_added == len(SMALL_LOGS) + 1  # the refund conversation has 2 turns
    hits = kb.search((), "do giftcards have an expiry date?", 3)
    assert hits[0].source_id == "c-gift#1"
    assert "never expire" in hits[0].agent_reply
    assert hits[0].score > hits[1].score


def test_searches_do_not_queue_behind_another_writer_of_the_file(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    # An ingest job (or the conversation store) holding the SQLite file's write lock: the
    # server's searches read their snapshot at once instead of waiting for it to commit.
    kb = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], kb)
    writer = sqlite3.connect(kb.store.path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE log_conversations SET id = id")
        with ThreadPoolExecutor(1) as pool:
            hits = pool.submit(kb.search, (), "do giftcards have an expiry date?", 3)
            assert hits.result(timeout=10)[0].source_id == "c-gift#1"
    finally:
        writer.rollback()
        writer.close()


def test_follow_up_turn_is_found_through_its_context(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    kb = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], kb)
    context = (
        LogMessage("customer", "I returned a backpack on Monday"),
        LogMessage("agent", "Thanks, the warehouse logs returns within 2 days."),
    )
    hits = kb.search(context, "and when will I see the money?", 1)
    assert hits[0].source_id == "c-refund#2"


def test_reingest_adds_nothing_and_keeps_the_live_version(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    kb = make_knowledge()
    logs = write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)
    first = ingest_paths([logs], kb)
    second = ingest_paths([logs], kb)
    assert second.conversations_added == 0
    assert second.conversations_unchanged == len(SMALL_LOGS)
    assert second.entries_added == 0
    assert first.sync and second.sync and second.sync.version == first.sync.version
    assert kb.store.counts()["log_entries"] == len(SMALL_LOGS) + 1


def test_a_grown_conversation_replaces_its_entries(tmp_path: Path, make_knowledge: MakeKB) -> None:
    kb = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "a.jsonl", [exchange("c1", "hi there", "hello!")])], kb)
    grown = {
        "id": "c1",
        "messages": [
            {"role": "customer", "text": "hi there"},
            {"role": "agent", "text": "hello!"},
            {"role": "customer", "text": "can I pay with paypal?"},
            {"role": "agent", "text": "Yes, PayPal is accepted at checkout."},
        ],
    }
    report = ingest_paths([write_jsonl(tmp_path / "b.jsonl", [grown])], kb)
    assert report.conversations_updated == 1
    assert kb.store.counts()["log_entries"] == 2
    hits = kb.search((), "do you take paypal", 1)
    assert hits[0].source_id == "c1#2"


def test_pii_is_scrubbed_before_storage(tmp_path: Path, make_knowledge: MakeKB) -> None:
    kb = make_knowledge()
    logs = [
        exchange(
            "p1",
            "my card 4111 1111 1111 1111 was charged twice, call +1 415-555-0134",
            "Sorry! We refunded the duplicate charge.",
        )
    ]
    report = ingest_paths([write_jsonl(tmp_path / "pii.jsonl", logs)], kb)
    assert report.pii_replaced["card"] == 1 and report.pii_replaced["phone"] == 1
    stored = "".join(m.text for c in kb.iter_conversations() for m in c.messages)
    assert "4111" not in stored and "555-0134" not in stored
    raw = (kb.store.path).read_bytes() + (kb.store.path.with_name("supportbot.db-wal")).read_bytes()
    assert b"4111 1111" not in raw


def test_malformed_lines_are_reported_and_the_rest_ingested(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS[:2])
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("{broken json\n")
    kb = make_knowledge()
    report = ingest_paths([path], kb)
    assert report.conversations_added == 2
    assert [(i.line, "JSON" in i.reason) for i in report.issues] == [(3, True)]


def test_bad_path_stores_nothing(tmp_path: Path, make_knowledge: MakeKB) -> None:
    kb = make_knowledge()
    good = write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)
    with pytest.raises(UnsupportedLogFormat):
        ingest_paths([good, tmp_path / "missing.jsonl"], kb)
    assert kb.store.counts()["conversations"] == 0


def test_curated_answer_is_served_at_once_and_survives_restart(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    kb = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], kb)
    question = "Do you rent out camping stoves for a weekend?"
    assert "rental" not in kb.search((), question, 1)[0].agent_reply
    kb.add_curated(
        "correction:1", question, "Yes: stoves rent for $12/day via our rental program (KB-RNT-01)."
    )
    hit = kb.search((), "can I rent a camp stove?", 1)[0]
    assert hit.kind == "curated" and hit.source_id == "correction:1"

    # A new process (same home) sees it without any re-ingest.
    restarted = make_knowledge()
    assert restarted.search((), "can I rent a camp stove?", 1)[0].source_id == "correction:1"

    # Replacing and removing act live too.
    kb.add_curated("correction:1", question, "Stove rental is $10/day (KB-RNT-01).")
    assert "$10/day" in kb.search((), "rent a stove", 1)[0].agent_reply
    assert kb.remove_source("correction:1") == 1
    assert all(h.kind == "log" for h in kb.search((), "rent a stove", 5))
    assert all(h.kind == "log" for h in make_knowledge().search((), "rent a stove", 5))


def test_another_process_follows_one_curated_source_without_reloading(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    """What a replica does when another one announces a correction (bot.replicas)."""
    author = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], author)
    follower = make_knowledge()  # another process on the same home, its own live index
    follower.load()
    loads = follower.loads
    question = "Do you rent out camping stoves for a weekend?"

    author.add_curated("correction:1", question, "Stoves rent for $12/day (KB-RNT-01).")
    assert follower.search((), "rent a stove", 1)[0].kind == "log"  # not announced yet
    assert follower.follow_source("correction:1") == (1, 0)
    assert "$12/day" in follower.search((), "rent a stove", 1)[0].agent_reply

    author.add_curated("correction:1", question, "Stove rental is $10/day (KB-RNT-01).")
    assert follower.follow_source("correction:1") == (1, 1)  # the replaced entry leaves
    hits = follower.search((), "rent a stove", 5)
    assert "$10/day" in hits[0].agent_reply and not any("$12" in h.agent_reply for h in hits)

    author.remove_source("correction:1")
    assert follower.follow_source("correction:1") == (0, 1)
    assert follower.follow_source("correction:1") == (0, 0)  # a repeated announcement: no-op
    assert all(h.kind == "log" for h in follower.search((), "rent a stove", 5))
    assert follower.loads == loads


def test_a_server_follows_curated_changes_another_process_made_at_its_next_poll(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    """What a running server does after `supportbot curated edit` or `withdraw`."""
    cli = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], cli)
    server = make_knowledge()
    server.load()
    loads = server.loads
    question = "Do you rent out camping stoves for a weekend?"

    cli.add_curated("correction:1", question, "Stoves rent for $12/day (KB-RNT-01).")
    assert server.search((), "rent a stove", 1)[0].kind == "log"
    assert server.refresh_if_stale() is False  # no new index version, but...
    assert "$12/day" in server.search((), "rent a stove", 1)[0].agent_reply  # ...followed

    withdrawing = make_knowledge()  # a later command: nothing loaded, no model needed
    assert withdrawing.remove_source("correction:1") == 1
    server.refresh_if_stale()
    assert all(h.kind == "log" for h in server.search((), "rent a stove", 5))
    assert server.follow_curated() == (0, 0)  # nothing changed since
    assert server.loads == loads


def test_identical_replies_are_merged_with_support_count(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    reply = "Standard shipping takes 3-5 business days (KB-SHP-01)."
    logs = [
        exchange(f"s{i}", q, reply)
        for i, q in enumerate(
            ["when does my parcel come", "how long is shipping", "shipping time?"]
        )
    ]
    logs.append(exchange("other", "how long is express shipping", "Express takes 1-2 days."))
    kb = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", logs)], kb)
    hits = kb.search((), "how long does shipping take", 5)
    assert [h.agent_reply for h in hits].count(reply) == 1
    assert next(h for h in hits if h.agent_reply == reply).support == 3


def test_vote_share_is_each_answers_share_of_the_nearest_hits(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    shipping = "Standard shipping takes 3-5 business days (KB-SHP-01)."
    express = "Express takes 1-2 days."
    logs = [
        exchange(f"s{i}", q, shipping)
        for i, q in enumerate(["when does my parcel come", "how long is shipping", "ship time?"])
    ]
    logs.append(exchange("e", "how long is express shipping", express))
    kb = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", logs)], kb)
    hits = kb.search((), "how long does shipping take", 5)
    share = {h.agent_reply: h.vote_share for h in hits}
    assert share[shipping] + share[express] == pytest.approx(1.0)
    assert share[shipping] > 0.6  # three of the four neighbours give it
    # Without the other answers' hits, the remaining answer holds the whole vote.
    alone = kb.search_batch(
        [Query("how long does shipping take")], 5, exclude_conversation_ids=[{"s0", "s1", "s2"}]
    )[0]
    assert [(h.agent_reply, h.vote_share) for h in alone] == [(express, 1.0)]


def test_logged_questions_a_correction_covers_stop_voting_for_the_replaced_answer(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    old = "Gift cards never expire (KB-GFT-01)."
    new = "Gift cards expire after 5 years (KB-GFT-02)."
    asked = [
        "do gift cards expire",
        "is there an expiry date on gift cards",
        "how long is a gift card valid",
        "can my gift voucher run out",
    ]
    kb = make_knowledge()
    logs = [exchange(f"g{i}", q, old) for i, q in enumerate(asked)]
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", logs)], kb)
    query = "until when can I use my gift card"
    before = {h.agent_reply: h for h in kb.search((), query, 5)}
    assert before[old].support == 4

    kb.add_curated("correction:1", asked[0], new)
    kb.add_curated("correction:1:1", asked[1], new)
    kb.add_curated("correction:1:2", asked[2], new)
    after = {h.agent_reply: h for h in kb.search((), query, 5)}
    # Only the logged question the correction does not cover still gives the old answer.
    assert after[old].support == 1
    assert after[new].support == 3 and after[new].kind == "curated"
    assert after[new].vote_share > 0.7

    kb.remove_source("correction:1:1")  # detached again: that log votes again
    assert {h.agent_reply: h for h in kb.search((), query, 5)}[old].support == 2


def test_batch_search_excludes_conversations(tmp_path: Path, make_knowledge: MakeKB) -> None:
    kb = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], kb)
    queries = [Query("Do gift cards expire?"), Query("Do gift cards expire?")]
    results = kb.search_batch(queries, 2, exclude_conversation_ids=[(), {"c-gift"}])
    assert results[0][0].source_id == "c-gift#1"
    assert all(h.conversation_id != "c-gift" for h in results[1])


@pytest.mark.parametrize("threshold", [2, 10_000])
def test_switch_between_exact_and_approximate(
    tmp_path: Path, make_knowledge: MakeKB, threshold: int
) -> None:
    kb = make_knowledge(approximate_threshold=threshold)
    report = ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], kb)
    assert report.sync and report.sync.version
    assert report.sync.version.kind == ("hnsw" if threshold == 2 else "exact")
    assert kb.search((), "Do gift cards expire?", 1)[0].source_id == "c-gift#1"


def test_growing_past_the_threshold_rebuilds_as_hnsw(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    kb = make_knowledge(approximate_threshold=4)
    first = ingest_paths([write_jsonl(tmp_path / "a.jsonl", SMALL_LOGS[:3])], kb)
    second = ingest_paths([write_jsonl(tmp_path / "b.jsonl", SMALL_LOGS[3:])], kb)
    assert first.sync and first.sync.version and first.sync.version.kind == "exact"
    assert second.sync and second.sync.rebuilt and second.sync.version
    assert second.sync.version.kind == "hnsw"
    assert second.sync.embedded == len(SMALL_LOGS) + 1 - 3  # the first three came from cache
    assert kb.search((), "Do gift cards expire?", 1)[0].source_id == "c-gift#1"


def test_texts_searched_again_are_not_embedded_again(
    tmp_path: Path, make_knowledge: MakeKB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dashboard's suggestion page searches the same live customer messages for every
    correction it shows: their vectors are kept, and only new texts are embedded."""
    kb = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], kb)
    kb.load()
    embedded: list[str] = []
    encode = kb.embedder.encode

    def counting(texts: list[str], **kwargs: object) -> np.ndarray:
        embedded.extend(texts)
        return encode(texts, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(kb.embedder, "encode", counting)
    texts = ["where is my parcel", "can I return boots", "where is my parcel"]
    first, rows = kb.nearest_entries(texts, 3)
    assert embedded == ["where is my parcel", "can I return boots"]  # each text once
    again, rows_again = kb.nearest_entries([*texts, "do gift cards expire"], 3)
    assert embedded[2:] == ["do gift cards expire"]
    assert np.array_equal(again[:3], first)
    assert [[e.id for _, e in r] for r in rows_again[:3]] == [[e.id for _, e in r] for r in rows]
    assert rows[0][0][1].entry.conversation_id == "c-ship"
