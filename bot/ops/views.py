"""The review queue and the conversation view; the actions on them are in
:mod:`bot.ops.actions`, and come back here to show a form again with what was typed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

from aiohttp import web

from bot.core.types import (
    Correction,
    CustomerDetail,
    Flag,
    FlagReason,
    FlagStatus,
    Outcome,
    Rating,
    Turn,
)
from bot.ops.auth import OpsError
from bot.ops.keys import DATABASE, OPS_CONFIG, PREFIX, REVIEW_ENGINE
from bot.ops.queries import (
    QueueFilters,
    channels,
    conversation_extras,
    review_queue,
    utc_day_start,
)
from bot.ops.render import render
from bot.ops.storage import LoggedAction

MAX_REJECT_REASON_CHARS = 500
NOTICES = {
    "approved": "Reply approved.",
    "corrected": "Correction saved. It is served to customers from now on.",
    "corrected_scrubbed": "Correction saved. It is served to customers from now on, with the"
    " personal data in it replaced first (names, e-mail addresses, phone and order numbers"
    " become [NAME], [EMAIL], [PHONE], [REFERENCE]): read the answer below as customers get"
    " it. Words of your business that look like names belong in retrieval.keep_words.",
    "corrected_handoff": "Correction saved: the next customers who ask this get it. This"
    " customer has not received it and is still waiting: answer them with “Reply to the"
    " customer” in the conversation, then resolve the hand-off.",
    "rejected": "Reply rejected.",
    "resolved": "Hand-off resolved: the bot answers this conversation again.",
    "handed_back": "The bot answers this conversation again.",
    "replied": "Your message was added to the conversation.",
    "already_reviewed": "Someone already reviewed this reply; nothing was changed.",
}
# The reason filter's choices, saying what each holds: "Hand-off" listed 2 of 11 customers
# waiting for a person, the others being under "Low confidence" (an outside tester).
WAITING = "waiting"
REASON_FILTERS = {
    WAITING: "Waiting for a person (any reason)",
    FlagReason.LOW_CONFIDENCE.value: "Low confidence (the bot handed off)",
    FlagReason.HANDOFF.value: "Hand-off asked for, or an action only a person can take",
    FlagReason.GROUNDING_FALLBACK.value: "Grounding fallback",
    FlagReason.THUMBS_DOWN.value: "Thumbs down",
    FlagReason.NOT_HELPFUL.value: "Not helpful (Slack)",
    FlagReason.UNSURE.value: "Sent, not sure",
}
UNLOGGED = "The disk is full: this was done, but the review log could not record who did it."


# -- the queue --------------------------------------------------------------------------------
async def queue(request: web.Request) -> web.Response:
    filters, chosen = queue_filters(request)
    page = _positive_int(request.query.get("page", "1"), "page")
    size = request.app[OPS_CONFIG].page_size
    database = request.app[DATABASE]
    result = await database.read(
        lambda conn: review_queue(conn, filters, page=page, page_size=size)
    )
    closed_but_waiting = 0
    if filters.waiting and filters.status is FlagStatus.OPEN:
        # Customers whose hand-off a review closed before reviews left hand-offs open: they
        # still wait, under a closed flag (2 of 13 in the outside tester's queue).
        every = replace(filters, status=None)
        total = await database.read(lambda conn: review_queue(conn, every, page_size=1).total)
        closed_but_waiting = total - result.total
    return await render(
        request,
        "queue.html",
        {
            "result": result,
            "closed_but_waiting": closed_but_waiting,
            "chosen": chosen,
            "channels": await database.read(channels),
            "reasons": REASON_FILTERS,
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
    waiting = chosen["reason"] == WAITING
    try:
        status = None if chosen["status"] == "all" else FlagStatus(chosen["status"])
        reason = FlagReason(chosen["reason"]) if chosen["reason"] and not waiting else None
        since = _day(chosen["from"])
        until = _day(chosen["to"])
        # "to" names the last day shown, so the bound is the start of the next day.
        end = None if until is None else utc_day_start(until + timedelta(days=1))
    except (ValueError, OverflowError):  # 9999-12-31 has no next day
        raise OpsError(
            400, "Unknown filter", "One of the filters has a value the queue does not know."
        ) from None
    return (
        QueueFilters(
            status=status,
            reason=reason,
            waiting=waiting,
            channel=chosen["channel"] or None,
            since=None if since is None else utc_day_start(since),
            until=end,
        ),
        chosen,
    )


def _day(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


# SQLite and PostgreSQL offsets are 64-bit: a bigger page number would fail in the query.
MAX_PAGE = 1_000_000


def _positive_int(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PAGE:
        raise OpsError(
            400, "Bad request", f"The {what} must be a whole number from 1 to {MAX_PAGE}."
        )
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
    details: list[CustomerDetail]  # scrubbed from a customer's message, for operators only

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
        error=UNLOGGED if request.query.get("unlogged") else None,
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
    headers: dict[str, str] | None = None,
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
                details=extras.details.get(turn.id, []),
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
            "details_days": request.app[OPS_CONFIG].customer_details_days,
        },
        status=status,
        headers=headers,
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
