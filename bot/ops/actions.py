"""The actions on a flagged reply and on a conversation (approve, correct, reject, resolve
a hand-off, reply, hand back).

Every action is a POST answered with a redirect (303) back to the conversation, so a
reload never repeats it; who did what and when goes to the flag (``resolved_by``,
``resolved_at``) and to the review log. A form that fails validation is shown again with
the text the operator typed and a 422. An action refused because the disk is full is
shown again the same way with a 503 (``Retry-After``) that says nothing of it was saved;
one that was done but could not be written to the review log is reported done, with a
warning that says so.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web

from bot.core.errors import InvalidMessage, StorageUnavailable
from bot.core.types import FlagStatus, Outcome, Turn
from bot.ops.auth import STORAGE_FULL_TITLE, OpsError
from bot.ops.keys import DATABASE, REVIEW_ENGINE, SESSION
from bot.ops.queries import conversation_extras
from bot.ops.render import with_query
from bot.ops.storage import ReviewAction
from bot.ops.topics import questions_url
from bot.ops.views import MAX_REJECT_REASON_CHARS, Draft, conversation_page, safe_back
from bot.store.health import out_of_space
from bot.web.errors import STORAGE_UNAVAILABLE_RETRY_SECONDS

_T = TypeVar("_T")


class _NotSaved(Exception):
    """An action found the disk full; nothing of it was stored."""


async def _saving(write: Awaitable[_T]) -> _T:
    """``await write``, raising _NotSaved when the disk is full (the stores' domain error,
    or a full-disk error from a write outside them, such as the curated answers' index)."""
    try:
        return await write
    except Exception as exc:
        if isinstance(exc, StorageUnavailable) or out_of_space(exc):
            raise _NotSaved from exc
        raise


async def _not_saved(
    request: web.Request, conversation_id: str, back: str, what: str, draft: Draft | None
) -> web.Response:
    """The conversation again, with a 503 saying ``what`` was not saved for lack of room
    and the operator's ``draft`` back in its box."""
    kept = "; what you typed is kept below" if draft is not None and draft.text.strip() else ""
    return await conversation_page(
        request,
        conversation_id,
        back=back,
        error=(
            f"{what} was not saved: the disk is full. Please try again in a few minutes"
            f"{kept}. Nothing saved before is lost."
        ),
        draft=draft,
        status=503,
        headers={"Retry-After": str(STORAGE_UNAVAILABLE_RETRY_SECONDS)},
    )


# -- actions on a reply -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Action:
    turn: Turn
    operator: str
    form: dict[str, str]
    back: str


async def _turn_action(request: web.Request) -> _Action:
    """The bot turn acted on, who acts, and the posted form. Raises TurnNotFound."""
    engine = request.app[REVIEW_ENGINE]
    turn = await engine.store.get_turn(request.match_info["turn_id"])
    if turn.role != "bot":
        raise OpsError(422, "Not a bot reply", "Only the bot's replies are reviewed.")
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    return _Action(turn, request[SESSION].operator.name, form, safe_back(request, form.get("back")))


def _done(
    request: web.Request,
    conversation_id: str,
    notice: str,
    back: str,
    turn_id: str = "",
    *,
    logged: bool = True,
) -> web.Response:
    url = str(request.app.router["conversation"].url_for(conversation_id=conversation_id))
    query = {"notice": notice, "back": back} | ({} if logged else {"unlogged": "1"})
    location = with_query(url, **query) + (f"#turn-{turn_id}" if turn_id else "")
    return web.Response(status=303, headers={"Location": location})


async def _resolve(request: web.Request, act: _Action, status: FlagStatus) -> int:
    store = request.app[REVIEW_ENGINE].store
    return await store.resolve_turn_flags(act.turn.id, status, act.operator)


async def _log(
    request: web.Request,
    conversation_id: str,
    operator: str,
    action: ReviewAction,
    turn_id: str | None = None,
    note: str = "",
) -> bool:
    """Record the action in the review log; False when the disk is full (the action itself
    is done by then, so it is reported as done, with a warning, not refused)."""
    try:
        await _saving(
            request.app[DATABASE].run(
                lambda store: store.log_action(operator, action, conversation_id, turn_id, note)
            )
        )
    except _NotSaved:
        return False
    return True


async def _log_turn(
    request: web.Request, act: _Action, action: ReviewAction, note: str = ""
) -> bool:
    turn = act.turn
    return await _log(request, turn.conversation_id, act.operator, action, turn.id, note)


def _refuse_on_a_handoff(act: _Action, what: str) -> None:
    """A hand-off's flags stand for a customer waiting for a person: approving or rejecting
    "I'll pass you to a person" closed them, and the customer dropped out of the open queue
    unanswered (an outside tester, issue 19). Only resolving the hand-off closes them.
    Raises OpsError (422)."""
    if act.turn.outcome is Outcome.HANDOFF:
        raise OpsError(
            422,
            "Not possible on a hand-off",
            f"A hand-off is not {what}: the customer is waiting for a person. Answer them with"
            " “Reply to the customer”, then resolve the hand-off.",
        )


async def approve(request: web.Request) -> web.Response:
    act = await _turn_action(request)
    _refuse_on_a_handoff(act, "approved")
    try:
        resolved = await _saving(_resolve(request, act, FlagStatus.APPROVED))
    except _NotSaved:
        return await _not_saved(request, act.turn.conversation_id, act.back, "The approval", None)
    logged = await _log_turn(request, act, ReviewAction.APPROVE) if resolved else True
    notice = "approved" if resolved else "already_reviewed"
    return _done(request, act.turn.conversation_id, notice, act.back, act.turn.id, logged=logged)


async def correct(request: web.Request) -> web.Response:
    """Edit & approve: the operator's answer becomes a curated answer at once. On a
    hand-off it teaches the next customers only: this one still waits (see engine.correct)."""
    act = await _turn_action(request)
    answer = act.form.get("answer", "")
    engine = request.app[REVIEW_ENGINE]
    draft = Draft(act.turn.id, "correct", answer)
    before = await _corrections_of(request, act.turn)
    try:
        correction = await _saving(engine.correct(act.turn.id, answer, created_by=act.operator))
    except InvalidMessage as exc:
        return await conversation_page(
            request,
            act.turn.conversation_id,
            back=act.back,
            error=f"The correction was not saved: {exc}.",
            draft=draft,
            status=422,
        )
    except _NotSaved:
        if await _corrections_of(request, act.turn) == before:
            return await _not_saved(
                request, act.turn.conversation_id, act.back, "The correction", draft
            )
        # Stored, then a later step (serving it, closing the flags) found no room: sending
        # it again would store it twice.
        raise OpsError(
            503,
            STORAGE_FULL_TITLE,
            "The correction was saved, but the disk is full, so it may not be served to "
            "customers yet. Do not send it again; free some space and it can be reviewed.",
            {"Retry-After": str(STORAGE_UNAVAILABLE_RETRY_SECONDS)},
        ) from None
    logged = await _log_turn(request, act, ReviewAction.CORRECT, correction.source_id)
    if act.turn.outcome is Outcome.HANDOFF:
        notice = "corrected_handoff"  # the customer still waits: said before all else
    elif scrubbed_away(answer, correction.answer):
        notice = "corrected_scrubbed"
    else:
        notice = "corrected"
    # Straight on to the customers who ask the same thing differently (issue 20).
    location = questions_url(
        request,
        correction,
        notice=notice,
        back=act.back,
        unlogged="" if logged else "1",
    )
    return web.Response(status=303, headers={"Location": location})


def scrubbed_away(typed: str, stored: str) -> bool:
    """Whether scrubbing changed what the operator typed (a colleague's name, the name in
    a greeting, the customer's order number): the correction is served as stored, and the
    operator was only told "Correction saved." while "Maria at our Boulder store" went out
    as "[NAME] at our Boulder store". Spacing aside, which the engine tidies."""
    return " ".join(typed.split()) != " ".join(stored.split())


async def _corrections_of(request: web.Request, turn: Turn) -> int:
    extras = await request.app[DATABASE].read(
        lambda conn: conversation_extras(conn, turn.conversation_id)
    )
    return len(extras.corrections.get(turn.id, []))


async def reject(request: web.Request) -> web.Response:
    act = await _turn_action(request)
    _refuse_on_a_handoff(act, "rejected")
    reason = " ".join(act.form.get("reason", "").split())
    problem = None
    if not reason:
        problem = "Give a reason for rejecting the reply."
    elif len(reason) > MAX_REJECT_REASON_CHARS:
        problem = f"The reason is over {MAX_REJECT_REASON_CHARS} characters."
    if problem is not None:
        return await conversation_page(
            request,
            act.turn.conversation_id,
            back=act.back,
            error=problem,
            draft=Draft(act.turn.id, "reject", act.form.get("reason", "")),
            status=422,
        )
    try:
        resolved = await _saving(_resolve(request, act, FlagStatus.REJECTED))
    except _NotSaved:
        draft = Draft(act.turn.id, "reject", act.form.get("reason", ""))
        return await _not_saved(request, act.turn.conversation_id, act.back, "The rejection", draft)
    logged = await _log_turn(request, act, ReviewAction.REJECT, reason) if resolved else True
    notice = "rejected" if resolved else "already_reviewed"
    return _done(request, act.turn.conversation_id, notice, act.back, act.turn.id, logged=logged)


async def resolve_handoff(request: web.Request) -> web.Response:
    """The operator has dealt with the customer: the bot answers again, the flags close.

    Both steps can be repeated, so after a full disk the operator simply tries again."""
    act = await _turn_action(request)
    try:
        await _saving(request.app[REVIEW_ENGINE].hand_back(act.turn.conversation_id))
        await _saving(_resolve(request, act, FlagStatus.RESOLVED))
    except _NotSaved:
        return await _not_saved(
            request, act.turn.conversation_id, act.back, "Resolving the hand-off", None
        )
    logged = await _log_turn(request, act, ReviewAction.RESOLVE_HANDOFF)
    return _done(
        request, act.turn.conversation_id, "resolved", act.back, act.turn.id, logged=logged
    )


# -- actions on a conversation ----------------------------------------------------------------
async def _conversation_action(request: web.Request) -> tuple[str, str, dict[str, str], str]:
    conversation_id = request.match_info["conversation_id"]
    await request.app[REVIEW_ENGINE].store.get_conversation(conversation_id)
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    operator = request[SESSION].operator.name
    return conversation_id, operator, form, safe_back(request, form.get("back"))


async def hand_back(request: web.Request) -> web.Response:
    conversation_id, operator, _, back = await _conversation_action(request)
    try:
        await _saving(request.app[REVIEW_ENGINE].hand_back(conversation_id))
    except _NotSaved:
        return await _not_saved(request, conversation_id, back, "Handing back", None)
    logged = await _log(request, conversation_id, operator, ReviewAction.HAND_BACK)
    return _done(request, conversation_id, "handed_back", back, logged=logged)


async def reply(request: web.Request) -> web.Response:
    """An operator's message to the customer; the conversation stays with a person."""
    conversation_id, operator, form, back = await _conversation_action(request)
    text = form.get("text", "")
    draft = Draft("reply", "reply", text)
    try:
        turn = await _saving(request.app[REVIEW_ENGINE].add_agent_turn(conversation_id, text))
    except InvalidMessage as exc:
        return await conversation_page(
            request,
            conversation_id,
            back=back,
            error=f"The message was not sent: {exc}.",
            draft=draft,
            status=422,
        )
    except _NotSaved:
        return await _not_saved(request, conversation_id, back, "Your message", draft)
    logged = await _log(request, conversation_id, operator, ReviewAction.REPLY, turn.id)
    return _done(request, conversation_id, "replied", back, turn.id, logged=logged)
