"""`supportbot scrub`: scrub again what a home stored before scrubbing got stronger."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.base import app, fail, settings_of
from bot.components import known_names_path, name_finder, open_knowledge_base
from bot.settings import Settings
from bot.store.conversations import ConversationDatabase
from retrieval.names import save_known_names

if TYPE_CHECKING:
    from bot.store.rescrub import StoreRescrub
    from retrieval.rescrub import KnowledgeRescrub, Rescrubber


@app.command()
def scrub(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would change; write nothing.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Scrub personal data again from everything stored (logs, index entries, curated
    answers, conversations) with today's scrubber, and publish a new search index."""
    from retrieval.rescrub import Rescrubber, rescrub_knowledge  # lazy: faiss

    settings = settings_of(ctx)
    names = name_finder(settings)
    if names is None:
        raise fail("PII scrubbing is turned off (retrieval.scrub_pii = false): nothing to do")
    rescrubber = Rescrubber(names)
    knowledge = open_knowledge_base(settings)
    try:
        knowledge_report = rescrub_knowledge(
            knowledge, rescrubber, dry_run=dry_run, progress=progress
        )
        store_report = asyncio.run(_rescrub_store(settings, rescrubber, dry_run))
    finally:
        knowledge.close()
        if not dry_run:
            # Kept even when the run failed half-way: what it stored was scrubbed with them.
            save_known_names(known_names_path(settings), names.known_names)
    for line in _report(knowledge_report, store_report, rescrubber):
        typer.echo(line)


async def _rescrub_store(settings: Settings, rescrubber: Rescrubber, dry_run: bool) -> StoreRescrub:
    from bot.store.rescrub import rescrub_conversation_store  # lazy: faiss

    store = ConversationDatabase(
        settings.storage.url_or_default(settings.paths.database), pool_size=2
    )
    await store.open()
    try:
        return await rescrub_conversation_store(store, rescrubber, dry_run=dry_run)
    finally:
        await store.aclose()


def _report(knowledge: KnowledgeRescrub, store: StoreRescrub, rescrubber: Rescrubber) -> list[str]:
    verb = "would change" if knowledge.dry_run else "changed"
    duplicates = (
        f" ({knowledge.duplicates} now the same as another, dropped)"
        if knowledge.duplicates
        else ""
    )
    changed = store.changed
    pii = ", ".join(f"{n} {kind}" for kind, n in sorted(rescrubber.counts.items()) if n)
    lines = [
        "dry run: nothing was written" if knowledge.dry_run else "scrubbed again",
        f"log conversations {verb}: {knowledge.conversations} of"
        f" {knowledge.stored_conversations}{duplicates}",
        f"index entries rewritten in place: {knowledge.entries}",
        f"curated answers {verb}: {knowledge.curated}",
        f"turns {verb}: {changed['customer_turns']} customer, {changed['bot_turns']} bot"
        f" replies, {changed['turn_sources']} replies' sources",
        f"rating comments {verb}: {changed['rating_comments']}, flag notes:"
        f" {changed['flag_details']}",
        f"corrections {verb}: {len(store.corrections)}",
        f"PII replaced: {pii or 'none'}",
    ]
    sync = knowledge.sync
    if sync is not None and sync.version is not None:
        # Rows replaced are dropped from the live index when sync_index loads it, so its
        # removed count is no news here: what was added (and embedded) is.
        published = "published" if sync.added or sync.removed or sync.rebuilt else "unchanged"
        lines.append(
            f"index: version {sync.version.id} {published} ({sync.version.entry_count} entries,"
            f" {sync.added} added; {sync.embedded_words()})"
        )
    return lines
