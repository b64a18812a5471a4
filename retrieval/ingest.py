"""The ingest job: read log files, scrub PII, store conversations, publish a new index."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
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
from retrieval.store import KnowledgeStore

log = logging.getLogger(__name__)

_STORE_BATCH = 256
RAW_HASH_KEY = "raw_hash.key"


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
    if not conversations:
        return []  # a name finder loads its word lists and models on first use
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

    A conversation read before, whose scrubbed text is still stored, is counted unchanged
    without being scrubbed again (scrubbing is most of an ingest's time): a stronger
    scrubber reaches what is stored through ``supportbot scrub``
    (:mod:`retrieval.rescrub`), not through a re-ingest.
    """
    options = options or ParseOptions()
    # read_logs checks each path when called, so a bad path fails before anything is stored.
    readers = [read_logs(path, options) for path in paths]
    report = IngestReport(files=[str(p) for p in paths])
    # Unscrubbed text is stored as read, so there is nothing to skip and nothing to hash.
    key = raw_hash_key(knowledge.index_root) if scrub_pii else None
    started = time.perf_counter()
    # Started once the name models are loaded: started before, it stood at "reading: 0conv"
    # for the minute they took, and a new user took the job for hung.
    bar: tqdm[None] | None = None
    for batch in _batches(_records(readers, report), _STORE_BATCH):
        if key is None:
            new, raw_hashes = batch, None
        else:
            new, raw_hashes = _not_known(batch, key, knowledge.store)
            report.conversations_unchanged += len(batch) - len(new)
        if scrub_pii and new and names is not None:
            _load_name_models(names)
        if bar is None:
            bar = tqdm(unit="conv", desc="reading", disable=not progress)
        clean = scrub_conversations(new, report.pii_replaced, names) if scrub_pii else new
        added = knowledge.store.add_conversations(clean, raw_hashes)
        report.conversations_added += added.conversations_added
        report.conversations_updated += added.conversations_updated
        report.conversations_unchanged += added.conversations_unchanged
        report.entries_added += added.entries_added
        bar.update(len(batch))
    if bar is not None:
        bar.close()
    report.sync = knowledge.sync_index(progress=progress)
    report.seconds = time.perf_counter() - started
    return report


def _load_name_models(names: NameFinder) -> None:
    """Load what finds names, saying so first: they load on first use, inside the first
    scrub, and take a minute or more on a first run (the given-name lists are built once)."""
    pending = names.models_to_load()
    if not pending:
        return
    what = ", ".join(pending[:-1]) + (" and " if len(pending) > 1 else "") + pending[-1]
    log.info("loading %s to scrub names; reading starts when they are loaded", what)
    started = time.perf_counter()
    names.load()
    log.info("name models loaded in %.0f s", time.perf_counter() - started)


def raw_hash(conversation: Conversation, key: bytes) -> str:
    """A keyed hash of what scrubbing reads of a conversation as read from its log: its
    messages and its metadata (which may name people). Like the scrubbed content hash, it
    leaves out the id: the same conversation under another id is stored once."""
    payload = json.dumps(
        [[[m.role, m.text] for m in conversation.messages], conversation.metadata],
        ensure_ascii=False,
        sort_keys=True,
        default=str,
    )
    return hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()


def raw_hash_key(folder: Path) -> bytes:
    """The home's key for :func:`raw_hash`, made at random by the first ingest and kept in
    ``folder`` (the index versions' folder, which replicas share), never in the database:
    the scrubbed text is stored beside the hash, so whoever read the database could
    otherwise test guesses of what was scrubbed out (an e-mail address, a name) against
    an unkeyed hash. A lost key costs one slow ingest: no hash matches, every conversation
    is scrubbed again, found unchanged and hashed with the new key."""
    path = folder / RAW_HASH_KEY
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        handle, made = tempfile.mkstemp(dir=folder, prefix=f".{RAW_HASH_KEY}.")  # mode 0600
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(secrets.token_bytes(32))
            # A link never replaces a key another ingest made meanwhile, and is never seen
            # half-written.
            os.link(made, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(made)
    return path.read_bytes()


def _not_known(
    batch: Sequence[Conversation], key: bytes, store: KnowledgeStore
) -> tuple[list[Conversation], list[str]]:
    """The conversations of ``batch`` not read before (or whose scrubbed text is no longer
    stored), with their raw hashes."""
    hashes = [raw_hash(c, key) for c in batch]
    known = store.known_raw_hashes(hashes)
    new = [(c, h) for c, h in zip(batch, hashes, strict=True) if h not in known]
    return [c for c, _ in new], [h for _, h in new]


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
