"""`supportbot curated`: list, edit and withdraw the operators' curated answers, and
attach the other questions one answers.

The same engine methods as the dashboard's pages (``edit_correction``,
``withdraw_correction``, ``suggest_questions``, ``attach_questions``), recorded in the
dashboard's review log under ``cli:<user>`` or ``--by``. A server running meanwhile
serves the change at its next index poll (``web.index_refresh_seconds``); replicas sharing
PostgreSQL are also told at once.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer

from bot.adapters.retrieval import KnowledgeRetriever
from bot.cli.base import app, fail, settings_of
from bot.components import open_knowledge_base, pii_scrubber
from bot.core.engine import ConversationEngine
from bot.core.errors import CorrectionNotFound, InvalidMessage
from bot.core.ports import AnswerCurator
from bot.core.types import Correction, SuggestedQuestion
from bot.ops.storage import DashboardStore, ReviewAction
from bot.replicas import announcing
from bot.settings import Settings
from bot.store.conversations import ConversationDatabase

curated_app = typer.Typer(
    help="Curated answers: the operators' corrections, served ahead of the logs.",
    no_args_is_help=True,
)
app.add_typer(curated_app, name="curated")

_T = TypeVar("_T")

By = Annotated[
    str | None,
    typer.Option("--by", help="Name recorded in the review log (default: cli:<your user>)."),
]


@curated_app.command("list")
def curated_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array, every field.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
) -> None:
    """List curated answers, newest first, withdrawn ones included."""

    async def work(engine: ConversationEngine) -> list[Correction]:
        return await engine.list_corrections(limit)

    corrections = _with_engine(settings_of(ctx), work, retrieval=False)
    if as_json:
        typer.echo(json.dumps([_as_json(c) for c in corrections], ensure_ascii=False, indent=2))
        return
    if not corrections:
        typer.echo("no curated answers yet: operators make them by correcting a reply at /ops/")
        return
    typer.echo("ID\tSTATUS\tCREATED\tBY\tQUESTION\tANSWER")
    for c in corrections:
        status = f"withdrawn by {c.withdrawn_by}" if c.withdrawn else "served"
        typer.echo(
            f"{c.id}\t{status}\t{_utc(c.created_at)}\t{c.created_by}"
            f"\t{_short(c.question, 60)}\t{_short(c.answer, 80)}"
        )


@curated_app.command("edit")
def curated_edit(
    ctx: typer.Context,
    correction_id: Annotated[int, typer.Argument(metavar="ID", help="As `curated list` shows.")],
    answer: Annotated[str, typer.Option("--answer", help="The new answer text.")],
    question: Annotated[
        str | None, typer.Option("--question", help="A new question (default: keep it).")
    ] = None,
    by: By = None,
) -> None:
    """Replace a curated answer's text (and question); served in place of the old one."""

    settings = settings_of(ctx)
    operator = by or _cli_user()

    async def work(engine: ConversationEngine) -> tuple[Correction, str]:
        edited = await engine.edit_correction(
            correction_id, answer, edited_by=operator, question=question
        )
        return edited, await _conversation_of(engine, edited)

    try:
        edited, conversation_id = _with_engine(settings, work)
    except (CorrectionNotFound, InvalidMessage) as exc:
        raise fail(_why(correction_id, exc)) from None
    _log(settings, operator, ReviewAction.EDIT_CORRECTION, edited, conversation_id)
    typer.echo(f"edited curated answer {edited.id} ({edited.source_id}); it is served from now on")


@curated_app.command("withdraw")
def curated_withdraw(
    ctx: typer.Context,
    correction_id: Annotated[int, typer.Argument(metavar="ID", help="As `curated list` shows.")],
    by: By = None,
) -> None:
    """Stop serving a curated answer and stop learning from it (kept, marked withdrawn)."""

    settings = settings_of(ctx)
    operator = by or _cli_user()

    async def work(engine: ConversationEngine) -> tuple[bool, Correction, str]:
        before = await engine.store.get_correction(correction_id)
        after = await engine.withdraw_correction(correction_id, withdrawn_by=operator)
        return before.withdrawn, after, await _conversation_of(engine, after)

    try:
        already, withdrawn, conversation_id = _with_engine(settings, work)
    except CorrectionNotFound as exc:
        raise fail(_why(correction_id, exc)) from None
    if already:
        typer.echo(
            f"curated answer {withdrawn.id} was already withdrawn by {withdrawn.withdrawn_by}"
        )
        return
    _log(settings, operator, ReviewAction.WITHDRAW_CORRECTION, withdrawn, conversation_id)
    typer.echo(f"withdrew curated answer {withdrawn.id} ({withdrawn.source_id})")


@curated_app.command("suggest")
def curated_suggest(
    ctx: typer.Context,
    correction_id: Annotated[int, typer.Argument(metavar="ID", help="As `curated list` shows.")],
    limit: Annotated[int, typer.Option(min=1, max=100, help="At most this many.")] = 20,
) -> None:
    """Past customer messages that may ask what a curated answer answers, to attach."""

    async def work(engine: ConversationEngine) -> list[SuggestedQuestion]:
        return await engine.suggest_questions(correction_id, limit)

    try:
        found = _with_engine(settings_of(ctx), work)
    except CorrectionNotFound as exc:
        raise fail(_why(correction_id, exc)) from None
    # LIKELY: in the dashboard's "likely the same question" group (still read each).
    typer.echo("SIMILARITY\tFROM\tGOT IT\tLIKELY\tQUESTION")
    for q in found:
        got = "yes" if q.got_wrong_answer else ""
        likely = "yes" if q.likely_same else ""
        typer.echo(f"{q.score:.2f}\t{q.origin}\t{got}\t{likely}\t{q.text}")


@curated_app.command("attach")
def curated_attach(
    ctx: typer.Context,
    correction_id: Annotated[int, typer.Argument(metavar="ID", help="As `curated list` shows.")],
    questions: Annotated[list[str], typer.Argument(metavar="QUESTION...")],
    by: By = None,
) -> None:
    """Serve a curated answer for more questions that ask the same thing."""

    settings = settings_of(ctx)
    operator = by or _cli_user()

    async def work(engine: ConversationEngine) -> tuple[int, Correction, str]:
        added = await engine.attach_questions(correction_id, questions, attached_by=operator)
        correction = await engine.store.get_correction(correction_id)
        return len(added), correction, await _conversation_of(engine, correction)

    try:
        added, correction, conversation_id = _with_engine(settings, work)
    except (CorrectionNotFound, InvalidMessage) as exc:
        raise fail(_why(correction_id, exc)) from None
    if added:
        _log(settings, operator, ReviewAction.ATTACH_QUESTIONS, correction, conversation_id)
    typer.echo(f"attached {added} question(s) to curated answer {correction.id}")


# -- wiring -----------------------------------------------------------------------------------
def _with_engine(
    settings: Settings,
    work: Callable[[ConversationEngine], Awaitable[_T]],
    *,
    retrieval: bool = True,
) -> _T:
    """``work(engine)`` over this home's store and, with ``retrieval``, its knowledge base
    as the curator (announcing changes to replicas on PostgreSQL)."""
    return asyncio.run(_run_with_engine(settings, work, retrieval))


async def _run_with_engine(
    settings: Settings, work: Callable[[ConversationEngine], Awaitable[_T]], retrieval: bool
) -> _T:
    from concurrent.futures import ThreadPoolExecutor

    paths = settings.paths.ensure()
    store = ConversationDatabase(settings.storage.url_or_default(paths.database), pool_size=2)
    await store.open()
    knowledge = open_knowledge_base(settings)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curated")
    try:
        retriever = KnowledgeRetriever(knowledge, executor)
        curator: AnswerCurator | None = retriever if retrieval else None
        if curator is not None:
            # Running servers follow the change as they follow each other's.
            curator = announcing(curator, store, "cli")
        engine = ConversationEngine(
            retriever,
            None,
            store,
            settings.engine,
            pii_scrubber(settings, executor),
            curator=curator,
            question_finder=retriever,
        )
        return await work(engine)
    finally:
        executor.shutdown(wait=True)
        await asyncio.to_thread(knowledge.close)
        await store.aclose()


async def _conversation_of(engine: ConversationEngine, correction: Correction) -> str:
    """The conversation of the corrected turn, where the review log files the action."""
    if correction.turn_id is None:
        return ""
    return (await engine.store.get_turn(correction.turn_id)).conversation_id


def _log(
    settings: Settings,
    operator: str,
    action: ReviewAction,
    correction: Correction,
    conversation_id: str,
) -> None:
    """Record ``action`` in the dashboard's review log, as the dashboard does."""

    log = DashboardStore.open(
        settings.paths.ensure().database, postgres_url=settings.storage.postgres_url
    )
    try:
        log.log_action(operator, action, conversation_id, correction.turn_id, correction.source_id)
    finally:
        log.close()


def _cli_user() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = str(os.getuid())
    return f"cli:{user}"


def _why(correction_id: int, exc: Exception) -> str:

    if isinstance(exc, CorrectionNotFound):
        return f"no curated answer {correction_id}: see `supportbot curated list`"
    return f"curated answer {correction_id}: {exc}"


def _as_json(c: Correction) -> dict[str, object]:
    return {
        "id": c.id,
        "source_id": c.source_id,
        "question": c.question,
        "answer": c.answer,
        "created_by": c.created_by,
        "created_at": c.created_at,
        "turn_id": c.turn_id,
        "edited_by": c.edited_by,
        "edited_at": c.edited_at,
        "withdrawn": c.withdrawn,
        "withdrawn_by": c.withdrawn_by,
        "withdrawn_at": c.withdrawn_at,
    }


def _utc(timestamp: float) -> str:
    return f"{datetime.fromtimestamp(timestamp, UTC):%Y-%m-%d %H:%M} UTC"


def _short(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
