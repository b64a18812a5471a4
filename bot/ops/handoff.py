"""The hand-off trade-off on the metrics page, and the operators' choice of the target served.

The application gives the dashboard a :class:`HandoffTargets` (``bot.handoff``): the
threshold served now and where it comes from, the trade-off table ``supportbot calibrate``
saved, and a way to serve another row of it. Choosing a row is a POST like every other
action (a session, its CSRF token, this site), answered with a redirect back to the panel,
and written to the review log with the operator's name.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from bot.core.errors import StorageUnavailable
from bot.ops.auth import OpsError
from bot.ops.keys import DATABASE, SESSION
from bot.ops.render import with_query
from bot.ops.storage import LoggedAction, ReviewAction

# The review log's rows name a conversation; a choice of target concerns none.
NO_CONVERSATION = ""
CHOSEN = "Hand-off target {target} chosen: new messages are judged by its threshold from now on."
UNLOGGED = (
    "The disk is full: the target was changed, but the review log could not record who did it."
)


@dataclass(frozen=True)
class TradeOffRow:
    """One hand-off target of the saved table, and what it gave on the labelled questions."""

    target: float  # share of off-topic questions to hand off
    threshold: float
    handoff_recall: float  # off-topic questions handed off
    generic_handoff_recall: float | None  # generic off-topic questions (None: not asked)
    answered_rate: float  # in-scope questions answered
    answered_accuracy: float  # of those answered, the share answered right
    wrong_answer_rate: float  # of all questions
    served: bool  # its threshold is the one served now


@dataclass(frozen=True)
class HandoffView:
    """What the panel shows: what is served, where from, and whether it can move here."""

    threshold: float  # below this confidence a message goes to a person
    source: str  # where the threshold comes from, in words
    rows: tuple[TradeOffRow, ...] = ()
    table_note: str = ""  # what the table was fitted on, and for which embedder
    disabled: str | None = None  # why no row can be chosen here; None when one can
    chosen_by: str | None = None  # who chose the target served (when one was chosen)
    chosen_at: float | None = None


@dataclass(frozen=True)
class HandoffChange:
    target: float
    threshold: float
    previous_target: float | None  # None: the threshold served did not come from the table
    previous_threshold: float


class HandoffRefused(Exception):
    """The target cannot be chosen; ``status`` and the message are for the operator."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HandoffTargets(Protocol):
    """The served hand-off threshold, for the dashboard. Both methods block on a small
    file (on shared storage with several hosts): call them in a worker thread."""

    def view(self) -> HandoffView: ...

    def choose(self, target: float, chosen_by: str) -> HandoffChange:
        """Serve the saved row of ``target`` here at once, and on every replica and after
        a restart. Raises HandoffRefused."""
        ...


HANDOFF = web.AppKey("ops_handoff", HandoffTargets)


async def handoff_view(request: web.Request) -> HandoffView:
    return await asyncio.to_thread(request.app[HANDOFF].view)


async def choose_target(request: web.Request) -> web.Response:
    """``POST /ops/handoff``: serve the trade-off row whose target the form names."""
    form = await request.post()
    text = form.get("target")
    try:
        target = float(text) if isinstance(text, str) else math.nan
    except ValueError:
        target = math.nan
    if not math.isfinite(target):
        raise OpsError(422, "Not possible", "Choose one of the targets in the table.")
    operator = request[SESSION].operator.name
    try:
        change = await asyncio.to_thread(request.app[HANDOFF].choose, target, operator)
    except HandoffRefused as exc:
        raise OpsError(exc.status, "Not possible", str(exc)) from None
    logged = await _log(request, operator, _note(change))
    location = with_query(
        str(request.app.router["metrics"].url_for()),
        chosen=f"{change.target:.2f}",
        unlogged="" if logged else "1",
    )
    return web.Response(status=303, headers={"Location": f"{location}#handoff"})


def _note(change: HandoffChange) -> str:
    before = (
        f"threshold {change.previous_threshold:.3f}"
        if change.previous_target is None
        else f"target {change.previous_target:.2f}, threshold {change.previous_threshold:.3f}"
    )
    return f"hand-off target {change.target:.2f}, threshold {change.threshold:.3f} (was {before})"


async def _log(request: web.Request, operator: str, note: str) -> bool:
    """Record the choice in the review log; False when the disk is full (the choice is
    made by then, so it is reported as made, with a warning)."""
    try:
        await request.app[DATABASE].run(
            lambda store: store.log_action(
                operator, ReviewAction.CHOOSE_HANDOFF_TARGET, NO_CONVERSATION, None, note
            )
        )
    except StorageUnavailable:
        return False
    return True


async def recent_choices(request: web.Request, limit: int = 5) -> list[LoggedAction]:
    """The latest choices of hand-off target in the review log, newest first."""
    return await request.app[DATABASE].run(
        lambda store: store.recent_actions(ReviewAction.CHOOSE_HANDOFF_TARGET, limit)
    )
