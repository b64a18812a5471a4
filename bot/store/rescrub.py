"""Re-scrub the conversation store (``supportbot scrub``): live conversations stored by
earlier releases hold names the engine now removes.

Each text is scrubbed as the engine scrubs it when it is stored today: what customers wrote
(their turns, rating comments and the flags that quote them) wholly; the bot's replies of
names only (a copied reply may greet another customer by name); corrections' questions
wholly and answers of names only, with the corrected customer's order and ticket numbers
masked in both; the past exchanges a reply recorded as its sources as the knowledge base
scrubs them. Operators' own messages (agent turns) are left as the engine leaves them.
Rows are rewritten a page at a time, only where they still hold what was read, so the job
may run beside a server, be killed and be run again.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.core.types import Turn
from bot.store.records import TEXT_COLUMNS, StoredText
from retrieval.pii import references_in
from retrieval.rescrub import Rescrubber

_PAGE = 256


class TextStore(Protocol):
    """What the job needs of a conversation store (both backends have it)."""

    async def read_texts(self, column: str, after: str | int, limit: int) -> list[StoredText]: ...

    async def write_texts(self, column: str, changes: Sequence[tuple[StoredText, str]]) -> int: ...

    async def list_turns(self, conversation_id: str) -> list[Turn]: ...


@dataclass
class StoreRescrub:
    """Rows changed (or, in a dry run, that would change), by column of
    :data:`bot.store.records.TEXT_COLUMNS`."""

    changed: Counter[str] = field(default_factory=Counter)
    corrections: set[int] = field(default_factory=set)  # ids whose question or answer changed


async def rescrub_conversation_store(
    store: TextStore, rescrubber: Rescrubber, *, dry_run: bool = False
) -> StoreRescrub:
    """Scrub every text of the conversation store again (see the module's docstring);
    ``dry_run`` counts without writing. Customer turns go first: the references masked in
    corrections are read from them."""
    report = StoreRescrub()
    references = _References(store)
    for column in TEXT_COLUMNS:
        after = TEXT_COLUMNS[column].first_key
        while page := await store.read_texts(column, after, _PAGE):
            after = page[-1].key
            new = await _rescrubbed(column, page, rescrubber, references)
            changes = [(t, n) for t, n in zip(page, new, strict=True) if n != t.text]
            report.changed[column] += len(changes)
            if column.startswith("correction_"):
                report.corrections.update(int(t.key) for t, _ in changes)
            if changes and not dry_run:
                await store.write_texts(column, changes)
    return report


async def _rescrubbed(
    column: str, page: Sequence[StoredText], rescrubber: Rescrubber, references: _References
) -> list[str]:
    texts = [t.text for t in page]
    if column in ("customer_turns", "rating_comments", "flag_details"):
        return rescrubber.full(texts)
    if column == "bot_turns":
        return rescrubber.names_only(texts)
    if column == "turn_sources":
        return [_rescrubbed_sources(t, rescrubber) for t in texts]
    if column not in ("correction_questions", "correction_answers"):
        raise ValueError(f"no way to scrub {column!r}")
    # A correction answers the next customers: nothing of the corrected one may go with it.
    scrub = rescrubber.full if column == "correction_questions" else rescrubber.names_only
    return [
        rescrubber.mask([text], await references.of(t.conversation_id))[0]
        for t, text in zip(page, scrub(texts), strict=True)
    ]


def _rescrubbed_sources(payload: str, rescrubber: Rescrubber) -> str:
    """A reply's recorded sources with the past exchanges scrubbed as the knowledge base
    now stores them: the question wholly, a curated answer of names only."""
    sources: list[dict[str, Any]] = json.loads(payload)
    changed = False
    for source in sources:
        question = rescrubber.full([source["customer_text"]])[0]
        scrub = rescrubber.names_only if source.get("kind") == "curated" else rescrubber.full
        answer = scrub([source["agent_reply"]])[0]
        if (question, answer) != (source["customer_text"], source["agent_reply"]):
            source.update(customer_text=question, agent_reply=answer)
            changed = True
    # Unchanged sources keep their stored form, so only what changed is written.
    return json.dumps(sources, ensure_ascii=False) if changed else payload


class _References:
    """The order, ticket and account numbers each conversation's customer wrote."""

    def __init__(self, store: TextStore) -> None:
        self._store = store
        self._known: dict[str, set[str]] = {}

    async def of(self, conversation_id: str | None) -> set[str]:
        if conversation_id is None:
            return set()
        if conversation_id not in self._known:
            turns = await self._store.list_turns(conversation_id)
            self._known[conversation_id] = references_in(
                t.text for t in turns if t.role == "customer"
            )
        return self._known[conversation_id]
