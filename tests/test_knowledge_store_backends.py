"""The knowledge base the same through both stores: the home's SQLite file and a real
PostgreSQL server (replicas on several hosts). Ingest and search, curated answers added,
replaced and removed (and followed by another process), index versions published and rolled
back, the embedding cache; and two hosts, each with its own home folder, sharing the
PostgreSQL store and the index folders: what one publishes or corrects, the other serves."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg
import pytest

from retrieval.embedder import TUNED_MANIFEST
from retrieval.ingest import ingest_paths
from retrieval.knowledge import KnowledgeBase
from tests.support.corpus import SMALL_LOGS, exchange, write_jsonl

MakeKB = Callable[..., KnowledgeBase]

STOVE = "Do you rent out camping stoves for a weekend?"


@pytest.fixture(params=["sqlite", "postgresql"])
def make_kb(request: pytest.FixtureRequest, make_knowledge: MakeKB) -> MakeKB:
    """``make_knowledge`` with the tables in the home's SQLite file, or all in one PostgreSQL
    database (skipped where no PostgreSQL is installed)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None

    def make(name: str = "home", **config: object) -> KnowledgeBase:
        return make_knowledge(name, postgres_url=url, **config)

    return make


def test_ingest_search_and_reingest(tmp_path: Path, make_kb: MakeKB) -> None:
    kb = make_kb()
    logs = write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)
    first = ingest_paths([logs], kb)
    assert first.conversations_added == len(SMALL_LOGS)
    assert kb.search((), "do giftcards have an expiry date?", 1)[0].source_id == "c-gift#1"
    again = ingest_paths([logs], kb)
    assert again.conversations_unchanged == len(SMALL_LOGS) and again.entries_added == 0
    assert first.sync and again.sync and again.sync.version == first.sync.version
    assert kb.store.counts() == {
        "conversations": len(SMALL_LOGS),
        "log_entries": len(SMALL_LOGS) + 1,
        "curated_entries": 0,
    }

    # A grown conversation replaces its entries and is read back last, as it was stored.
    grown = exchange("c-gift", "Do gift cards expire?", "Gift cards never expire (KB-GFT-01).")
    grown["messages"] = [
        *grown["messages"],  # type: ignore[misc]
        {"role": "customer", "text": "Can I use two gift cards on one order?"},
        {"role": "agent", "text": "Yes, up to five gift cards per order (KB-GFT-04)."},
    ]
    report = ingest_paths([write_jsonl(tmp_path / "grown.jsonl", [grown])], kb)
    assert report.conversations_updated == 1
    assert [c.id for c in kb.store.iter_conversations()][-1] == "c-gift"
    assert kb.search((), "several gift cards on one order?", 1)[0].source_id == "c-gift#2"
    assert kb.store.counts()["log_entries"] == len(SMALL_LOGS) + 2


def test_curated_answers_added_replaced_removed_and_followed(
    tmp_path: Path, make_kb: MakeKB
) -> None:
    kb = make_kb()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], kb)
    follower = make_kb()  # another process over the same store, its own live index
    follower.load()

    first = kb.add_curated("correction:1", STOVE, "Stoves rent for $12/day (KB-RNT-01).")
    hit = kb.search((), "can I rent a camp stove?", 1)[0]
    assert (hit.kind, hit.source_id) == ("curated", "correction:1")
    assert make_kb().search((), "can I rent a camp stove?", 1)[0].source_id == "correction:1"
    assert follower.follow_source("correction:1") == (1, 0)
    assert "$12/day" in follower.search((), "rent a stove", 1)[0].agent_reply

    second = kb.add_curated("correction:1", STOVE, "Stove rental is $10/day (KB-RNT-01).")
    assert second != first
    assert kb.store.entry_ids_of_source("correction:1") == ({second}, {first})
    assert follower.follow_source("correction:1") == (1, 1)
    hits = follower.search((), "rent a stove", 5)
    assert "$10/day" in hits[0].agent_reply and not any("$12" in h.agent_reply for h in hits)

    assert kb.remove_source("correction:1") == 1
    assert follower.follow_source("correction:1") == (0, 1)
    assert all(h.kind == "log" for h in make_kb().search((), "rent a stove", 5))
    assert kb.store.counts()["curated_entries"] == 0


def test_index_versions_publish_and_roll_back(tmp_path: Path, make_kb: MakeKB) -> None:
    kb = make_kb()
    ingest_paths([write_jsonl(tmp_path / "first.jsonl", SMALL_LOGS)], kb)
    first = kb.store.live_index_version()
    assert first is not None and first.folder == tmp_path / "home" / "indexes" / "v0001"
    tent = [exchange("t1", "Is the Summit tent waterproof?", "Yes, rated 3000 mm (KB-TNT-01).")]
    ingest_paths([write_jsonl(tmp_path / "second.jsonl", tent)], kb)
    second = kb.store.live_index_version()
    assert second is not None and second.id > first.id and second.folder.name == "v0002"
    assert [v.is_live for v in kb.store.index_versions()] == [False, True]

    assert kb.rollback() == kb.store.live_index_version()
    assert kb.version is not None and kb.version.id == first.id
    assert kb.version.folder == first.folder and kb.version.first_live_at is not None
    assert make_kb().search((), "is the Summit tent waterproof?", 1)[0].source_id != "t1#1"
    with pytest.raises(LookupError):
        kb.make_live(second.id + 100)
    assert kb.make_live(second.id).id == second.id
    assert make_kb().search((), "is the Summit tent waterproof?", 1)[0].source_id == "t1#1"


def test_the_embedding_cache_keeps_vectors_per_embedder(make_kb: MakeKB) -> None:
    store = make_kb().store
    vectors = np.random.default_rng(0).standard_normal((3, 384)).astype(np.float32)
    store.cache_vectors([("a", vectors[0]), ("b", vectors[1])], "model-1")
    store.cache_vectors([("a", vectors[2]), ("c", vectors[2])], "model-1")  # a is kept
    store.cache_vectors([("a", vectors[2])], "model-2")
    found = store.cached_vectors(["a", "b", "c", "missing", "a"], "model-1")
    assert sorted(found) == ["a", "b", "c"]
    assert np.array_equal(found["a"], vectors[0]) and np.array_equal(found["b"], vectors[1])
    assert found["a"].dtype == np.float32
    assert store.drop_cached_vectors("model-1") == 3
    assert store.cached_vectors(["a", "b"], "model-1") == {}
    assert np.array_equal(store.cached_vectors(["a"], "model-2")["a"], vectors[2])


def test_an_index_built_once_is_not_embedded_again_by_another_process(
    tmp_path: Path, make_kb: MakeKB
) -> None:
    kb = make_kb()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], kb)
    other = make_kb()
    report = other.reembed(other.configured_embedder)  # a full rebuild, from the cache
    assert report.embedded == 0 and report.added == len(SMALL_LOGS) + 1


def test_two_hosts_share_the_postgres_store_and_the_index_folders(
    tmp_path: Path, make_knowledge: MakeKB, postgres_url: str
) -> None:
    """Host A and host B each have their own home path; the index folders are one shared
    folder mounted in both homes (here: B's ``indexes`` is a link to A's)."""
    host_a = make_knowledge("host-a", postgres_url=postgres_url)
    (tmp_path / "host-b").mkdir()
    (tmp_path / "host-b" / "indexes").symlink_to(tmp_path / "host-a" / "indexes")
    host_b = make_knowledge("host-b", postgres_url=postgres_url)

    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], host_a)
    host_b.load()
    assert host_b.version is not None and host_a.version is not None
    assert host_b.version.id == host_a.version.id
    assert host_b.version.folder == tmp_path / "host-b" / "indexes" / "v0001"
    assert host_b.search((), "do giftcards have an expiry date?", 1)[0].source_id == "c-gift#1"
    with psycopg.connect(postgres_url) as conn:
        recorded = conn.execute("SELECT folder FROM index_versions").fetchall()
    assert recorded == [("indexes/v0001",)]  # relative to whichever home reads it

    # A correction served on A is served on B once announced (bot.replicas follows it).
    host_a.add_curated("correction:7", STOVE, "Stoves rent for $12/day (KB-RNT-01).")
    assert host_b.follow_source("correction:7") == (1, 0)
    assert host_b.search((), "rent a camp stove", 1)[0].source_id == "correction:7"

    # A version A publishes is the one B switches to at its next poll.
    tent = [exchange("t1", "Is the Summit tent waterproof?", "Yes, rated 3000 mm (KB-TNT-01).")]
    ingest_paths([write_jsonl(tmp_path / "tent.jsonl", tent)], host_a)
    assert host_b.refresh_if_stale()
    assert host_b.version is not None and host_b.version.folder.name == "v0002"
    assert host_b.version.folder.parent == tmp_path / "host-b" / "indexes"
    assert host_b.search((), "is the Summit tent waterproof?", 1)[0].source_id == "t1#1"
    assert host_b.search((), "rent a camp stove", 1)[0].source_id == "correction:7"

    # B rolls back; A follows.
    host_b.rollback()
    assert host_a.refresh_if_stale()
    assert host_a.version is not None and host_a.version.folder.name == "v0001"
    assert host_a.version.folder.parent == tmp_path / "host-a" / "indexes"


def test_hosts_mounting_the_shared_models_elsewhere_serve_the_same_tuned_pair(
    tmp_path: Path, make_knowledge: MakeKB, postgres_url: str
) -> None:
    """Host B reaches the shared models/ folder at another path than host A (a copy stands
    in for a mount at another point): the tuned embedder is the same one by its manifest's
    id, so B serves the index A built with it instead of refusing it."""
    host_a = make_knowledge("host-a", postgres_url=postgres_url)
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], host_a)
    tuned_folder = tmp_path / "host-a" / "models" / "embedders" / "v0001"
    host_a.embedder.load_model().save(str(tuned_folder))  # stands in for a tuned model
    (tuned_folder / TUNED_MANIFEST).write_text(
        json.dumps({"embedder_id": "tuned-test"}), encoding="utf-8"
    )
    host_a.reembed(host_a.embedder_at(str(tuned_folder)))
    assert host_a.embedder.model_id.startswith("tuned-test@")

    (tmp_path / "host-b").mkdir()
    (tmp_path / "host-b" / "indexes").symlink_to(tmp_path / "host-a" / "indexes")
    shutil.copytree(tmp_path / "host-a" / "models", tmp_path / "host-b" / "models")
    host_b = make_knowledge("host-b", postgres_url=postgres_url)
    host_b.load()
    assert host_b.version is not None and host_a.version is not None
    assert host_b.version.id == host_a.version.id
    assert Path(host_b.embedder.name) == tmp_path / "host-b" / "models" / "embedders" / "v0001"
    assert host_b.embedder.model_id == host_a.embedder.model_id
    assert host_b.search((), "do giftcards have an expiry date?", 1)[0].source_id == "c-gift#1"


def test_a_serving_knowledge_base_outlives_a_dropped_postgres_connection(
    tmp_path: Path, make_knowledge: MakeKB, postgres_url: str
) -> None:
    """A replica keeps answering after the server dropped its connection (a restart, a
    network cut): its next search reconnects; a write after it works too."""
    kb = make_knowledge(postgres_url=postgres_url)
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], kb)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    assert kb.search((), "do giftcards have an expiry date?", 1)[0].source_id == "c-gift#1"
    kb.add_curated("correction:1", STOVE, "Stoves rent for $12/day (KB-RNT-01).")
    assert kb.search((), "rent a camp stove", 1)[0].source_id == "correction:1"
