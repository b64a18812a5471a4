"""Re-scrub what a home stored before scrubbing got stronger (``supportbot scrub``).

Earlier releases stored text scrubbed the old way: people's names, and e-mails that end a
sentence, are still in the stored logs, in the entries that index versions serve (soft-deleted
rows included: an older version or a rollback serves them), and in curated answers. This
job scrubs all of it again with the home's name finder and publishes a new index version.

It is safe to kill and to rerun. The live index keeps serving until the new version is
published, as ingest guarantees; each step writes in its own transactions, and scrubbing
what is already scrubbed changes nothing, so a rerun finishes the job and a second run
after a complete one reports nothing changed.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from tqdm import tqdm

from retrieval.ingest import scrub_conversations
from retrieval.knowledge import KnowledgeBase, SyncReport
from retrieval.names import NameFinder, people_in_metadata
from retrieval.pii import mask_references, references_in, scrub_batch
from retrieval.records import Conversation, ExchangeEntry, LogMessage

log = logging.getLogger(__name__)

_BATCH = 256
_MEMO_LIMIT = 50_000  # remembered texts; contexts repeat within a conversation's entries

_T = TypeVar("_T")


class Rescrubber:
    """Scrubs stored texts in the two ways stored text needs and counts what it replaced
    (by kind, every time a text is rewritten): :meth:`full` for what customers and logs
    wrote, :meth:`names_only` for what operators wrote or the bot replied (the shop's own
    phone number stays). Results are remembered, as one message recurs in the context of
    every later entry of its conversation."""

    def __init__(self, names: NameFinder) -> None:
        self.names = names
        self.counts: Counter[str] = Counter()
        self._memo: dict[tuple[bool, str], tuple[str, dict[str, int]]] = {}

    def full(self, texts: Sequence[str]) -> list[str]:
        """``texts`` with e-mails, phone numbers, cards, IBANs and names replaced."""
        return self._scrubbed(True, texts)

    def names_only(self, texts: Sequence[str]) -> list[str]:
        """``texts`` with people's names dropped or replaced, nothing else."""
        return self._scrubbed(False, texts)

    def mask(self, texts: Sequence[str], references: Collection[str]) -> list[str]:
        """``texts`` with the customer's ``references`` (order numbers...) masked."""
        masked = [mask_references(t, references) for t in texts]
        self.counts["reference"] += sum(m != t for m, t in zip(masked, texts, strict=True))
        return masked

    def _scrubbed(self, full: bool, texts: Sequence[str]) -> list[str]:
        todo = list(dict.fromkeys(t for t in texts if (full, t) not in self._memo))
        if len(self._memo) + len(todo) > _MEMO_LIMIT:
            self._memo.clear()
        if full:
            for text, result in zip(todo, scrub_batch(todo, self.names), strict=True):
                self._memo[(True, text)] = (result.text, dict(result.counts))
        else:
            for text, (clean, n) in zip(
                todo, self.names.scrub_batch(todo, staff=True), strict=True
            ):
                self._memo[(False, text)] = (clean, {"name": n})
        scrubbed = []
        for text in texts:
            clean, counts = self._memo[(full, text)]
            self.counts.update({kind: n for kind, n in counts.items() if n})
            scrubbed.append(clean)
        return scrubbed


@dataclass
class KnowledgeRescrub:
    """What :func:`rescrub_knowledge` changed (or, in a dry run, would change)."""

    conversations: int = 0  # stored log conversations rewritten (their entries rebuilt)
    duplicates: int = 0  # of those, now the same as another stored one and dropped
    entries: int = 0  # entry rows rewritten in place (deleted ones, older versions')
    curated: int = 0  # live curated answers stored anew
    stored_conversations: int = 0
    sync: SyncReport | None = None
    dry_run: bool = False


def rescrub_knowledge(
    knowledge: KnowledgeBase,
    rescrubber: Rescrubber,
    *,
    dry_run: bool = False,
    progress: bool = False,
) -> KnowledgeRescrub:
    """Scrub the knowledge base again and publish the result as a new index version.

    1. Every stored log conversation, as ingest scrubs new ones (names learned from all of
       them first); those that changed are stored again, so their entries are rebuilt.
    2. Live curated answers: the question fully, the answer of names only (an operator may
       rightly give the shop's phone number), stored anew so the new version embeds them.
    3. Every other entry row, deleted ones included, rewritten in place: older index
       versions and rollbacks serve them.
    4. :meth:`KnowledgeBase.sync_index` publishes the new version.

    ``dry_run`` counts without writing. Names learned are in ``rescrubber.names``; saving
    them is the caller's (as after ingest).
    """
    report = KnowledgeRescrub(dry_run=dry_run)
    _rescrub_conversations(knowledge, rescrubber, report, progress=progress)
    curated = _rescrub_curated(knowledge, rescrubber, report)
    _rescrub_entry_rows(knowledge, rescrubber, report, curated, progress=progress)
    if not dry_run:
        report.sync = knowledge.sync_index(progress=progress)
    return report


def _rescrub_conversations(
    knowledge: KnowledgeBase, rescrubber: Rescrubber, report: KnowledgeRescrub, *, progress: bool
) -> None:
    stored = list(knowledge.store.iter_conversations())
    report.stored_conversations = len(stored)
    names = rescrubber.names
    # All names first: one learned from a later batch must scrub the earlier batches too,
    # or the next run would find it there and the job would never be done.
    for batch in _chunks(stored, _BATCH):
        names.learn(n for c in batch for n in people_in_metadata(c.metadata))
        names.learn_from([m.text for c in batch for m in c.messages])
    bar = tqdm(total=len(stored), unit="conv", desc="conversations", disable=not progress)
    for batch in _chunks(stored, _BATCH):
        clean = scrub_conversations(batch, rescrubber.counts, names)
        changed = [new for new, old in zip(clean, batch, strict=True) if _differs(new, old)]
        report.conversations += len(changed)
        if changed and not report.dry_run:
            report.duplicates += knowledge.store.replace_conversations(changed)
        bar.update(len(batch))
    bar.close()


def _differs(new: Conversation, old: Conversation) -> bool:
    return new.messages != old.messages or dict(new.metadata) != dict(old.metadata)


def _rescrub_curated(
    knowledge: KnowledgeBase, rescrubber: Rescrubber, report: KnowledgeRescrub
) -> set[int]:
    """Store the live curated answers anew where scrubbing changes them; return the ids
    they had."""
    store = knowledge.store
    live = store.entries_by_id(store.live_entry_ids(kind="curated"))
    for entry_id in sorted(live):
        entry = live[entry_id].entry
        clean = rescrubbed_entry(entry, rescrubber)
        if clean == entry:
            continue
        report.curated += 1
        if not report.dry_run:
            # Replacing it, not only rewriting it, makes the new version embed the
            # scrubbed question; the old row, now deleted, is still served by the older
            # versions. Killed between the two, the next run rewrites that row in step 3.
            store.add_entry(clean)
            store.rewrite_entries([(entry_id, clean)])
    return set(live)


def _rescrub_entry_rows(
    knowledge: KnowledgeBase,
    rescrubber: Rescrubber,
    report: KnowledgeRescrub,
    curated: set[int],
    *,
    progress: bool,
) -> None:
    store = knowledge.store
    bar = tqdm(unit="entry", desc="entries", disable=not progress)
    after = 0
    while rows := store.entry_rows(after, _BATCH):
        after = rows[-1][0].id
        rewritten = []
        for stored in (s for s, _ in rows if s.id not in curated):  # step 2 did those
            clean = rescrubbed_entry(stored.entry, rescrubber)
            if clean != stored.entry:
                rewritten.append((stored.id, clean))
        report.entries += len(rewritten)
        if rewritten and not report.dry_run:
            store.rewrite_entries(rewritten)
        bar.update(len(rows))
    bar.close()


def rescrubbed_entry(entry: ExchangeEntry, rescrubber: Rescrubber) -> ExchangeEntry:
    """``entry`` scrubbed as what it was made from was: a log entry wholly, as ingest
    scrubs logs, with the customer's references masked in the agent's messages; a curated
    answer's customer messages wholly and the rest (the operator's answer, the bot's
    replies) of names only, with the customer's references masked everywhere but in the
    customer's own messages, as the engine does for corrections."""
    curated = entry.kind == "curated"
    customer = [m.text for m in entry.context if m.role == "customer"] + [entry.customer_text]
    others = [m.text for m in entry.context if m.role != "customer"] + [entry.agent_reply]
    customer = rescrubber.full(customer)
    others = rescrubber.names_only(others) if curated else rescrubber.full(others)
    references = references_in(customer)
    others = rescrubber.mask(others, references)
    if curated:
        customer[-1:] = rescrubber.mask(customer[-1:], references)
    asked, answered = iter(customer), iter(others)
    context = tuple(
        LogMessage(m.role, next(asked) if m.role == "customer" else next(answered))
        for m in entry.context
    )
    return replace(entry, context=context, customer_text=next(asked), agent_reply=next(answered))


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
