"""The curated answers page: every operator correction, which can be edited or withdrawn.

A correction is served by retrieval as a curated answer until it is withdrawn. Editing and
withdrawing go through the engine (``edit_correction``, ``withdraw_correction``), which
changes what retrieval serves at once; each is a POST answered with a redirect (303), and
recorded in the review log with the operator's name and the answer's source id as note.
A withdrawn answer cannot be served again, so withdrawing asks for a ticked box on the
answer's own page (a plain form field: no JavaScript needed).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar
from urllib.parse import parse_qsl

from aiohttp import web

from bot.core.errors import CorrectionNotFound, InvalidMessage, StorageUnavailable
from bot.core.types import Correction
from bot.ops.auth import OpsError, storage_full_error
from bot.ops.keys import DATABASE, OPS_CONFIG, REVIEW_ENGINE, SESSION
from bot.ops.queries import CURATED_SHOWN, curated_answers
from bot.ops.render import render, with_query
from bot.ops.storage import LoggedAction, ReviewAction
from bot.store.health import out_of_space

NOTICES = {
    "edited": "Curated answer saved. Customers get the new text from now on.",
    "withdrawn": "Curated answer withdrawn. It is no longer served, nor learned from.",
    "already_withdrawn": "This curated answer was already withdrawn; nothing was changed.",
}
UNLOGGED = "The disk is full: this was done, but the review log could not record who did it."

_T = TypeVar("_T")


async def curated_list(request: web.Request) -> web.Response:
    shown = request.query.get("show", "all").strip() or "all"
    if shown not in CURATED_SHOWN:
        raise OpsError(400, "Unknown filter", "The list has no such filter.")
    page = _page_number(request.query.get("page", "1"))
    size = request.app[OPS_CONFIG].page_size
    database = request.app[DATABASE]
    result = await database.read(
        lambda conn: curated_answers(conn, shown, page=page, page_size=size)
    )
    source_ids = [item.correction.source_id for item in result.items]
    history = await database.run(lambda store: store.actions_on_corrections(source_ids))
    return await render(
        request,
        "curated.html",
        {
            "result": result,
            "shown": shown,
            "history": _by_note(history),
            "notice": NOTICES.get(request.query.get("notice", "")),
            "error": UNLOGGED if request.query.get("unlogged") else None,
            "back": request.path_qs,
        },
    )


async def curated_edit_page(request: web.Request) -> web.Response:
    correction = await _correction(request)
    return await _edit_page(request, correction, back=_back(request, request.query.get("back")))


async def edit(request: web.Request) -> web.Response:
    correction = await _correction(request)
    form = await _form(request)
    back = _back(request, form.get("back"))
    answer, question = form.get("answer", ""), form.get("question", "")
    engine = request.app[REVIEW_ENGINE]
    try:
        edited = await _saving(
            engine.edit_correction(
                correction.id,
                answer,
                edited_by=_operator(request),
                question=question if question.strip() else None,
            )
        )
    except InvalidMessage as exc:
        return await _edit_page(
            request,
            correction,
            back=back,
            error=f"The curated answer was not saved: {exc}.",
            typed=(question, answer),
            status=422,
        )
    logged = await log_action(request, edited, ReviewAction.EDIT_CORRECTION)
    return _done(request, back, "edited", edited, logged=logged)


async def withdraw(request: web.Request) -> web.Response:
    correction = await _correction(request)
    form = await _form(request)
    back = _back(request, form.get("back"))
    if correction.withdrawn:  # a second click, or another operator was first
        return _done(request, back, "already_withdrawn", correction)
    if form.get("confirm") != "yes":
        # One click withdrew it, and a withdrawn answer cannot be restored (an outside
        # tester): the form's box must be ticked, which needs no JavaScript.
        return await _edit_page(
            request,
            correction,
            back=back,
            error="Nothing was withdrawn: tick the box to confirm. A withdrawn answer cannot"
            " be restored.",
            status=422,
        )
    engine = request.app[REVIEW_ENGINE]
    withdrawn = await _saving(
        engine.withdraw_correction(correction.id, withdrawn_by=_operator(request))
    )
    logged = await log_action(request, withdrawn, ReviewAction.WITHDRAW_CORRECTION)
    return _done(request, back, "withdrawn", withdrawn, logged=logged)


# -- helpers ----------------------------------------------------------------------------------
async def _edit_page(
    request: web.Request,
    correction: Correction,
    *,
    back: str,
    error: str | None = None,
    typed: tuple[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    database = request.app[DATABASE]
    history = await database.run(lambda store: store.actions_on_corrections([correction.source_id]))
    conversation_id = None
    if correction.turn_id is not None:
        turn = await request.app[REVIEW_ENGINE].store.get_turn(correction.turn_id)
        conversation_id = turn.conversation_id
    question, answer = typed if typed is not None else ("", correction.answer)
    return await render(
        request,
        "curated_edit.html",
        {
            "c": correction,
            "conversation_id": conversation_id,
            "history": history,
            "question": question,
            "answer": answer,
            "error": error,
            "back": back,
        },
        status=status,
    )


async def _correction(request: web.Request) -> Correction:
    """The correction the path names; a 404 for an id that is not one."""
    text = request.match_info["correction_id"]
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    if not (text.isascii() and text.isdigit()) or len(text) > 18:  # 19 digits pass BIGINT
        raise OpsError(404, "Not found", "There is no such curated answer.")
    try:
        return await request.app[REVIEW_ENGINE].store.get_correction(int(text))
    except CorrectionNotFound:
        raise OpsError(404, "Not found", "There is no such curated answer.") from None


async def _form(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}


def _operator(request: web.Request) -> str:
    return request[SESSION].operator.name


def _page_number(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 1_000_000:
        raise OpsError(400, "Bad request", "The page must be a whole number from 1.")
    return int(text)


def _back(request: web.Request, target: object) -> str:
    """The curated list page to return to (with its filter and page); the list when not
    given or not one of its pages."""
    home = str(request.app.router["curated"].url_for())
    if isinstance(target, str) and (target == home or target.startswith(f"{home}?")):
        return target
    return home


def _done(
    request: web.Request,
    back: str,
    notice: str,
    correction: Correction,
    *,
    logged: bool = True,
) -> web.Response:
    path, _, query = back.partition("?")
    kept = {k: v for k, v in parse_qsl(query) if k in ("show", "page")}
    location = with_query(path, **kept, notice=notice, unlogged="" if logged else "1")
    return web.Response(status=303, headers={"Location": f"{location}#correction-{correction.id}"})


async def _saving(write: Awaitable[_T]) -> _T:
    """``await write``; a full disk (the stores' or the curated index's) is a 503 page
    that says nothing was saved: editing and withdrawing can simply be tried again."""

    try:
        return await write
    except Exception as exc:
        if isinstance(exc, StorageUnavailable) or out_of_space(exc):
            raise storage_full_error() from exc
        raise


async def log_action(request: web.Request, correction: Correction, action: ReviewAction) -> bool:
    """Record the action in the review log, under the corrected turn's conversation (so
    that conversation's log shows it too); False when the disk is full."""
    conversation_id = ""
    if correction.turn_id is not None:
        turn = await request.app[REVIEW_ENGINE].store.get_turn(correction.turn_id)
        conversation_id = turn.conversation_id
    operator = _operator(request)
    try:
        await request.app[DATABASE].run(
            lambda store: store.log_action(
                operator, action, conversation_id, correction.turn_id, correction.source_id
            )
        )
    except StorageUnavailable:
        return False
    return True


def _by_note(actions: list[LoggedAction]) -> dict[str, list[LoggedAction]]:
    found: dict[str, list[LoggedAction]] = {}
    for action in actions:
        found.setdefault(action.note, []).append(action)
    return found
