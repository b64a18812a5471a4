"""The review queue and the conversation view, and the actions on a flagged reply.

Every action is a POST answered with a redirect (303) back to the conversation, so a
reload never repeats it; who did what and when goes to the flag (``resolved_by``,
``resolved_at``) and to the review log. A form that fails validation is shown again with
the text the operator typed and a 422.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from aiohttp import web

from bot.core.errors import InvalidMessage
from bot.core.types import (
    Correction,
    Flag,
    FlagReason,
    FlagStatus,
    Outcome,
    Rating,
    Turn,
)
from bot.ops.auth import OpsError
from bot.ops.keys import DATABASE, OPS_CONFIG, PREFIX, REVIEW_ENGINE, SESSION
from bot.ops.queries import (
    QueueFilters,
    channels,
    conversation_extras,
    review_queue,
    utc_day_start,
)
from bot.ops.render import render, with_query
from bot.ops.storage import LoggedAction, ReviewAction

MAX_REJECT_REASON_CHARS = 500

NOTICES = {
    "approved": "Reply approved.",
    "corrected": "Correction saved. It is served to customers from now on.",
    "rejected": "Reply rejected.",
    "resolved": "Hand-off resolved: the bot answers this conversation again.",
    "handed_back": "The bot answers this conversation again.",
    "replied": "Your message was added to the conversation.",
    "already_reviewed": "Someone already reviewed this reply; nothing was changed.",
}


# -- the queue --------------------------------------------------------------------------------
async def queue(request: web.Request) -> web.Response:
    filters, chosen = queue_filters(request)
    page = _positive_int(request.query.get("page", "1"), "page")
    size = request.app[OPS_CONFIG].page_size
    database = request.app[DATABASE]
    result = await database.read(
        lambda conn: review_queue(conn, filters, page=page, page_size=size)
    )
    return await render(
        request,
        "queue.html",
        {
            "result": result,
            "chosen": chosen,
            "channels": await database.read(channels),
            "reasons": list(FlagReason),
            "statuses": list(FlagStatus),
            "back": request.path_qs,
        },
    )


def queue_filters(request: web.Request) -> tuple[QueueFilters, dict[str, str]]:
    """The filters in the query string, and the chosen values to show in the form.

    Raises OpsError (400) for a value no form offers.
    """
    query = request.query
    chosen = {
        key: query.get(key, "").strip() for key in ("status", "reason", "channel", "from", "to")
    }
    if not chosen["status"]:
        chosen["status"] = FlagStatus.OPEN.value
    try:
        status = None if chosen["status"] == "all" else FlagStatus(chosen["status"])
        reason = FlagReason(chosen["reason"]) if chosen["reason"] else None
        since = _day(chosen["from"])
        until = _day(chosen["to"])
    except ValueError:
        raise OpsError(
            400, "Unknown filter", "One of the filters has a value the queue does not know."
        ) from None
    return (
        QueueFilters(
            status=status,
            reason=reason,
            channel=chosen["channel"] or None,
            since=None if since is None else utc_day_start(since),
            # "to" names the last day shown, so the bound is the start of the next day.
            until=None if until is None else utc_day_start(until + timedelta(days=1)),
        ),
        chosen,
    )


def _day(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def _positive_int(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise OpsError(400, "Bad request", f"The {what} must be a whole number from 1.")
    return value


# -- one conversation -------------------------------------------------------------------------
@dataclass(frozen=True)
class TurnView:
    turn: Turn
    question: str | None  # for a bot turn: the customer message it answered
    rating: Rating | None
    rated_at: float | None
    flags: list[Flag]
    corrections: list[Correction]
    log: list[LoggedAction]

    @property
    def open_flags(self) -> list[Flag]:
        return [f for f in self.flags if f.status is FlagStatus.OPEN]

    @property
    def is_handoff(self) -> bool:
        return self.turn.outcome is Outcome.HANDOFF or any(
            f.reason is FlagReason.HANDOFF for f in self.flags
        )


@dataclass(frozen=True)
class Draft:
    """What an operator typed into a form that failed, to show it again."""

    target: str  # a turn id, or "reply" for the conversation's reply box
    action: str
    text: str


async def conversation(request: web.Request) -> web.Response:
    return await conversation_page(
        request,
        request.match_info["conversation_id"],
        back=safe_back(request, request.query.get("back")),
        notice=NOTICES.get(request.query.get("notice", "")),
    )


async def conversation_page(
    request: web.Request,
    conversation_id: str,
    *,
    back: str,
    notice: str | None = None,
    error: str | None = None,
    draft: Draft | None = None,
    status: int = 200,
) -> web.Response:
    """Raises ConversationNotFound."""
    engine = request.app[REVIEW_ENGINE]
    database = request.app[DATABASE]
    turns = await engine.history(conversation_id)
    record = await engine.store.get_conversation(conversation_id)
    extras = await database.read(lambda conn: conversation_extras(conn, conversation_id))
    review_log = await database.run(lambda store: store.actions_for(conversation_id))
    views, last_question = [], None
    for turn in turns:
        if turn.role == "customer":
            last_question = turn.text
        views.append(
            TurnView(
                turn=turn,
                question=last_question if turn.role == "bot" else None,
                rating=extras.ratings.get(turn.id),
                rated_at=extras.rated_at.get(turn.id),
                flags=extras.flags.get(turn.id, []),
                corrections=extras.corrections.get(turn.id, []),
                log=[entry for entry in review_log if entry.turn_id == turn.id],
            )
        )
    return await render(
        request,
        "conversation.html",
        {
            "conversation": record,
            "turns": views,
            "review_log": review_log,
            "notice": notice,
            "error": error,
            "draft": draft,
            "back": back,
            "max_chars": MAX_REJECT_REASON_CHARS,
        },
        status=status,
    )


def safe_back(request: web.Request, target: object) -> str:
    """The queue page to return to (with its filters); the queue when not given."""
    home = str(request.app.router["queue"].url_for())
    if (
        isinstance(target, str)
        and target.startswith(f"{PREFIX}/")
        and not target.startswith(f"{PREFIX}//")
    ):
        return target
    return home


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
    request: web.Request, conversation_id: str, notice: str, back: str, turn_id: str = ""
) -> web.Response:
    url = str(request.app.router["conversation"].url_for(conversation_id=conversation_id))
    location = with_query(url, notice=notice, back=back) + (f"#turn-{turn_id}" if turn_id else "")
    return web.Response(status=303, headers={"Location": location})


async def _resolve(request: web.Request, act: _Action, status: FlagStatus) -> int:
    store = request.app[REVIEW_ENGINE].store
    return await store.resolve_turn_flags(act.turn.id, status, act.operator)


async def _log(request: web.Request, act: _Action, action: ReviewAction, note: str = "") -> None:
    turn = act.turn
    await request.app[DATABASE].run(
        lambda store: store.log_action(act.operator, action, turn.conversation_id, turn.id, note)
    )


async def approve(request: web.Request) -> web.Response:
    act = await _turn_action(request)
    resolved = await _resolve(request, act, FlagStatus.APPROVED)
    if resolved:
        await _log(request, act, ReviewAction.APPROVE)
    notice = "approved" if resolved else "already_reviewed"
    return _done(request, act.turn.conversation_id, notice, act.back, act.turn.id)


async def correct(request: web.Request) -> web.Response:
    """Edit & approve: the operator's answer becomes a curated answer at once."""
    act = await _turn_action(request)
    answer = act.form.get("answer", "")
    engine = request.app[REVIEW_ENGINE]
    try:
        correction = await engine.correct(act.turn.id, answer, created_by=act.operator)
    except InvalidMessage as exc:
        return await conversation_page(
            request,
            act.turn.conversation_id,
            back=act.back,
            error=f"The correction was not saved: {exc}.",
            draft=Draft(act.turn.id, "correct", answer),
            status=422,
        )
    await _log(request, act, ReviewAction.CORRECT, correction.source_id)
    return _done(request, act.turn.conversation_id, "corrected", act.back, act.turn.id)


async def reject(request: web.Request) -> web.Response:
    act = await _turn_action(request)
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
    resolved = await _resolve(request, act, FlagStatus.REJECTED)
    if resolved:
        await _log(request, act, ReviewAction.REJECT, reason)
    notice = "rejected" if resolved else "already_reviewed"
    return _done(request, act.turn.conversation_id, notice, act.back, act.turn.id)


async def resolve_handoff(request: web.Request) -> web.Response:
    """The operator has dealt with the customer: the bot answers again, the flags close."""
    act = await _turn_action(request)
    await request.app[REVIEW_ENGINE].hand_back(act.turn.conversation_id)
    await _resolve(request, act, FlagStatus.RESOLVED)
    await _log(request, act, ReviewAction.RESOLVE_HANDOFF)
    return _done(request, act.turn.conversation_id, "resolved", act.back, act.turn.id)


# -- actions on a conversation ----------------------------------------------------------------
async def _conversation_action(request: web.Request) -> tuple[str, str, dict[str, str], str]:
    conversation_id = request.match_info["conversation_id"]
    await request.app[REVIEW_ENGINE].store.get_conversation(conversation_id)
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    operator = request[SESSION].operator.name
    return conversation_id, operator, form, safe_back(request, form.get("back"))


async def hand_back(request: web.Request) -> web.Response:
    conversation_id, operator, _, back = await _conversation_action(request)
    await request.app[REVIEW_ENGINE].hand_back(conversation_id)
    await request.app[DATABASE].run(
        lambda store: store.log_action(operator, ReviewAction.HAND_BACK, conversation_id)
    )
    return _done(request, conversation_id, "handed_back", back)


async def reply(request: web.Request) -> web.Response:
    """An operator's message to the customer; the conversation stays with a person."""
    conversation_id, operator, form, back = await _conversation_action(request)
    text = form.get("text", "")
    try:
        turn = await request.app[REVIEW_ENGINE].add_agent_turn(conversation_id, text)
    except InvalidMessage as exc:
        return await conversation_page(
            request,
            conversation_id,
            back=back,
            error=f"The message was not sent: {exc}.",
            draft=Draft("reply", "reply", text),
            status=422,
        )
    await request.app[DATABASE].run(
        lambda store: store.log_action(operator, ReviewAction.REPLY, conversation_id, turn.id)
    )
    return _done(request, conversation_id, "replied", back, turn.id)
