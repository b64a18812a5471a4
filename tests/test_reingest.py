"""Reading logs again: what was read before is known without scrubbing it again (the
scrubber's name recogniser reads none of it, and no PII is counted), while a conversation
that changed is scrubbed and indexed anew; the database holds only keyed hashes of what
was read; and a `supportbot scrub` of what is stored keeps it known."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from retrieval.ingest import RAW_HASH_KEY, ingest_paths
from retrieval.knowledge import KnowledgeBase
from retrieval.names import NameFinder
from retrieval.rescrub import Rescrubber, rescrub_knowledge
from tests.support.corpus import SMALL_LOGS, exchange, write_jsonl

MakeKB = Callable[..., KnowledgeBase]

EMAIL = "mo.reyes@example.com"
WITH_PII = [
    *SMALL_LOGS,
    exchange("c-mail", f"Please send the invoice to {EMAIL}", "Done, Mo: it is on its way."),
]


class ReadingRecognizer:
    """A name recogniser that finds the name given to it wherever it is written, and keeps
    every text it was given: what the scrubber read."""

    def __init__(self, name: str = "Mo") -> None:
        self.read: list[str] = []
        self._name = re.compile(rf"\b{name}\b")

    def __call__(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        self.read.extend(texts)
        return [[m.span() for m in self._name.finditer(t)] for t in texts]


def _finder(recognizer: ReadingRecognizer, *names: str) -> NameFinder:
    return NameFinder(recognizer=recognizer, known_names=names)


def _stored_text(kb: KnowledgeBase) -> str:
    return "\n".join(m.text for c in kb.store.iter_conversations() for m in c.messages)


def test_a_second_ingest_of_the_same_file_scrubs_nothing_and_adds_nothing(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    kb = make_knowledge()
    logs = write_jsonl(tmp_path / "logs.jsonl", WITH_PII)
    first_reader = ReadingRecognizer()
    first = ingest_paths([logs], kb, names=_finder(first_reader))
    assert first.conversations_added == len(WITH_PII)
    assert first.pii_replaced["email"] == 1 and first.pii_replaced["name"] >= 1
    assert first_reader.read  # the first ingest did scrub

    second_reader = ReadingRecognizer()
    second = ingest_paths([logs], kb, names=_finder(second_reader))
    assert second_reader.read == []
    assert not +second.pii_replaced
    assert "PII replaced: none" in second.summary_lines()
    assert (second.conversations_added, second.conversations_updated) == (0, 0)
    assert second.conversations_unchanged == second.conversations_read == len(WITH_PII)
    assert second.entries_added == 0
    assert first.sync and second.sync and second.sync.version == first.sync.version
    assert EMAIL not in _stored_text(kb) and "Mo" not in _stored_text(kb)


def test_a_changed_conversation_is_scrubbed_and_indexed_again(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    kb = make_knowledge()
    ingest_paths(
        [write_jsonl(tmp_path / "a.jsonl", WITH_PII)], kb, names=_finder(ReadingRecognizer())
    )
    grown = exchange("c-gift", "Do gift cards expire?", "Gift cards never expire (KB-GFT-01).")
    grown["messages"] += [  # type: ignore[operator]
        {"role": "customer", "text": "Can I pay with paypal? Write to ana@example.org"},
        {"role": "agent", "text": "Yes, PayPal is accepted at checkout."},
    ]
    changed = [grown if c["id"] == "c-gift" else c for c in WITH_PII]

    reader = ReadingRecognizer()
    report = ingest_paths([write_jsonl(tmp_path / "b.jsonl", changed)], kb, names=_finder(reader))
    assert (report.conversations_updated, report.conversations_unchanged) == (1, len(WITH_PII) - 1)
    assert report.pii_replaced["email"] == 1  # this run's scrubbing only
    assert len(reader.read) == 4  # the grown conversation's messages, and nothing else
    assert "ana@example.org" not in _stored_text(kb)
    assert kb.search((), "do you take paypal", 1)[0].source_id == "c-gift#2"


def test_only_keyed_hashes_of_what_was_read_are_stored_and_a_lost_key_costs_one_slow_run(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    kb = make_knowledge()
    logs = write_jsonl(tmp_path / "logs.jsonl", WITH_PII)
    ingest_paths([logs], kb, names=_finder(ReadingRecognizer()))
    database = (
        kb.store.path.read_bytes() + kb.store.path.with_name("supportbot.db-wal").read_bytes()
    )
    assert EMAIL.encode() not in database
    key = kb.index_root / RAW_HASH_KEY
    assert len(key.read_bytes()) == 32 and key.stat().st_mode & 0o077 == 0

    key.unlink()  # a home restored without it: nothing is known, nothing is added twice
    reader = ReadingRecognizer()
    again = ingest_paths([logs], kb, names=_finder(reader))
    assert reader.read and again.conversations_unchanged == len(WITH_PII)
    assert again.entries_added == 0
    reader = ReadingRecognizer()
    ingest_paths([logs], kb, names=_finder(reader))
    assert reader.read == []


def test_conversations_scrubbed_again_by_supportbot_scrub_stay_known(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    """The scrubber got stronger (it learned a name): `supportbot scrub` rewrites what is
    stored, including a conversation that becomes the same as another one and is dropped;
    a re-ingest of the logs then scrubs nothing and adds nothing."""
    kb = make_knowledge()
    logs = write_jsonl(
        tmp_path / "logs.jsonl",
        [
            *WITH_PII,
            exchange("c-zed", "Is Zorblax in stock?", "Yes, Zorblax ships today."),
            exchange("c-qux", "Is Quxton in stock?", "Yes, Quxton ships today."),
        ],
    )
    first = ingest_paths([logs], kb, names=_finder(ReadingRecognizer()))
    assert "Zorblax" in _stored_text(kb)

    stronger = _finder(ReadingRecognizer(), "Zorblax", "Quxton")
    rescrubbed = rescrub_knowledge(kb, Rescrubber(stronger))
    assert (rescrubbed.conversations, rescrubbed.duplicates) == (2, 1)
    assert "Zorblax" not in _stored_text(kb) and "Quxton" not in _stored_text(kb)

    reader = ReadingRecognizer()
    again = ingest_paths([logs], kb, names=_finder(reader, "Zorblax", "Quxton"))
    assert reader.read == []
    assert (again.conversations_added, again.conversations_updated) == (0, 0)
    assert again.conversations_unchanged == first.conversations_read
