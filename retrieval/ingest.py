"""The ingest job: read log files, scrub PII, store conversations, publish a new index."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from retrieval.knowledge import KnowledgeBase, SyncReport
from retrieval.names import NameFinder, people_in_metadata, without_people
from retrieval.parsers import ParseOptions, read_logs
from retrieval.pii import mask_references, references_in, scrub_batch
from retrieval.records import Conversation, LogMessage, ParseIssue

log = logging.getLogger(__name__)

_STORE_BATCH = 256


@dataclass
class IngestReport:
    files: list[str] = field(default_factory=list)
    conversations_read: int = 0
    conversations_added: int = 0
    conversations_updated: int = 0
    conversations_unchanged: int = 0
    entries_added: int = 0
    issues: list[ParseIssue] = field(default_factory=list)
    pii_replaced: Counter[str] = field(default_factory=Counter)
    sync: SyncReport | None = None
    seconds: float = 0.0

    @property
    def pairs_per_second(self) -> float:
        return self.entries_added / self.seconds if self.seconds else 0.0

    def summary_lines(self) -> list[str]:
        pii = (
            ", ".join(f"{n} {kind}" for kind, n in sorted(self.pii_replaced.items()) if n) or "none"
        )
        lines = [
            f"files: {len(self.files)}",
            f"conversations read: {self.conversations_read} (added {self.conversations_added},"
            f" updated {self.conversations_updated}, already known"
            f" {self.conversations_unchanged})",
            f"exchanges added: {self.entries_added} ({self.pairs_per_second:.0f}/s)",
            f"PII replaced: {pii}",
            f"malformed records skipped: {len(self.issues)}",
        ]
        if self.sync is not None and self.sync.version is not None:
            lines.append(
                f"index: version {self.sync.version.id} ({self.sync.version.kind},"
                f" {self.sync.version.entry_count} entries, {self.sync.added} added,"
                f" {self.sync.removed} removed; {self.sync.embedded_words()})"
            )
        return lines


def scrub_conversations(
    conversations: Sequence[Conversation], counts: Counter[str], names: NameFinder | None = None
) -> list[Conversation]:
    """Copies of ``conversations`` with personal data replaced in every message, and the
    customer's own references (order numbers...) replaced in the agents' replies; counts
    are added. The names the conversations' metadata give, and those the rules find in
    greetings, sign-offs and introductions anywhere in the batch, are learned by ``names``
    first, so an agent greeted by name in one message is found in running text in another;
    metadata fields that name people are dropped."""
    texts = [m.text for c in conversations for m in c.messages]
    if names is not None:
        names.learn(n for c in conversations for n in people_in_metadata(c.metadata))
        names.learn_from(texts)
    staff = [m.role == "agent" for c in conversations for m in c.messages]
    results = iter(scrub_batch(texts, names, staff=staff))
    scrubbed = []
    for conversation in conversations:
        # An agent echoing the customer's order number would hand it to the next customer
        # a copied reply goes to.
        references = references_in(m.text for m in conversation.messages if m.role == "customer")
        messages = []
        for message in conversation.messages:
            result = next(results)
            counts.update(result.counts)
            text = result.text
            if message.role == "agent":
                masked = mask_references(text, references)
                counts["reference"] += masked != text
                text = masked
            messages.append(LogMessage(message.role, text))
        scrubbed.append(
            Conversation(
                id=conversation.id,
                messages=tuple(messages),
                metadata=without_people(conversation.metadata),
                source=conversation.source,
            )
        )
    return scrubbed


def scrub_conversation(
    conversation: Conversation, counts: Counter[str], names: NameFinder | None = None
) -> Conversation:
    """:func:`scrub_conversations` for one conversation."""
    return scrub_conversations([conversation], counts, names)[0]


def ingest_paths(
    paths: Sequence[Path],
    knowledge: KnowledgeBase,
    *,
    options: ParseOptions | None = None,
    scrub_pii: bool = True,
    names: NameFinder | None = None,
    progress: bool = False,
) -> IngestReport:
    """Ingest log files or Slack export folders and publish the updated index.

    Malformed records are reported in ``IngestReport.issues`` and skipped. Raises
    ``UnsupportedLogFormat`` before storing anything when a path is missing or of an
    unknown kind. A run killed half-way leaves the live index as it was; the conversations
    it stored are indexed by the next run. ``names`` finds people's names (without it, the
    rules alone do) and learns the names it meets; the caller saves them.
    """
    options = options or ParseOptions()
    # read_logs checks each path when called, so a bad path fails before anything is stored.
    readers = [read_logs(path, options) for path in paths]
    report = IngestReport(files=[str(p) for p in paths])
    started = time.perf_counter()
    bar = tqdm(unit="conv", desc="reading", disable=not progress)
    for batch in _batches(_records(readers, report), _STORE_BATCH):
        clean = scrub_conversations(batch, report.pii_replaced, names) if scrub_pii else batch
        added = knowledge.store.add_conversations(clean)
        report.conversations_added += added.conversations_added
        report.conversations_updated += added.conversations_updated
        report.conversations_unchanged += added.conversations_unchanged
        report.entries_added += added.entries_added
        bar.update(len(batch))
    bar.close()
    report.sync = knowledge.sync_index(progress=progress)
    report.seconds = time.perf_counter() - started
    return report


def _records(
    readers: Iterable[Iterable[Conversation | ParseIssue]], report: IngestReport
) -> Iterator[Conversation]:
    for reader in readers:
        for record in reader:
            if isinstance(record, ParseIssue):
                log.debug("skipped %s", record)
                report.issues.append(record)
                continue
            report.conversations_read += 1
            yield record


def _batches(items: Iterable[Conversation], size: int) -> Iterator[list[Conversation]]:
    batch: list[Conversation] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
