"""The questions a correction answers (issue 20): after an operator corrects a reply, the
past customer messages that ask nearly the same are offered with a checkbox each, and the
ones the operator attaches are served the corrected answer too.

The engine finds the suggestions (``suggest_questions``, in the retrieval worker) and
attaches the chosen ones (``attach_questions``); this module only renders and posts. The
texts are customers' messages as stored, scrubbed: operators see them, customers never.
"""

from __future__ import annotations

from aiohttp import web

from bot.core.errors import InvalidMessage, QuestionTaken
from bot.core.types import Correction
from bot.ops.curated import UNLOGGED, _correction, _operator, _saving, log_action
from bot.ops.keys import REVIEW_ENGINE
from bot.ops.render import render, with_query
from bot.ops.storage import ReviewAction
from bot.ops.views import NOTICES, safe_back

# An operator reads each one, so not many more than a topic needs. On Banking77
# (benchmarks/correction_topics_banking77.py --suggestions N, the operator attaching those
# of the intent), 20 offered: 64.5% of the topic's other customers got the correction, 15.0%
# the neighbouring topic's answer; 40: 77.5% / 11.5%; 60: 79.5% / 10.0%; logging the whole
# topic instead: 80.5% / 12.5%. Past 40 each extra line read buys little.
SUGGESTIONS_SHOWN = 40

ATTACHED_NOTICES = {
    "attached": "Questions attached. Customers who ask them get this answer from now on.",
    "none_chosen": "No question was chosen; nothing was attached.",
}


async def questions_page(request: web.Request) -> web.Response:
    correction = await _correction(request)
    notice = request.query.get("notice", "")
    return await _page(
        request,
        correction,
        back=safe_back(request, request.query.get("back")),
        notice=ATTACHED_NOTICES.get(notice) or NOTICES.get(notice),
        error=UNLOGGED if request.query.get("unlogged") else None,
    )


async def attach(request: web.Request) -> web.Response:
    correction = await _correction(request)
    form = await request.post()
    back = safe_back(request, form.get("back"))
    chosen = [v for v in form.getall("question", []) if isinstance(v, str)]
    if not chosen:
        return _done(request, correction, back, "none_chosen")
    engine = request.app[REVIEW_ENGINE]
    try:
        added = await _saving(
            engine.attach_questions(correction.id, chosen, attached_by=_operator(request))
        )
    except QuestionTaken as exc:
        return await _page(
            request,
            correction,
            back=back,
            error=(
                f"Nothing was attached: “{exc.question}” already gets another answer, from"
                f" curated answer {exc.source_id}. Leave it out, or withdraw or edit that one."
            ),
            chosen=set(chosen),
            status=422,
        )
    except InvalidMessage as exc:
        return await _page(
            request, correction, back=back, error=f"Nothing was attached: {exc}.", status=422
        )
    logged = await log_action(request, correction, ReviewAction.ATTACH_QUESTIONS) if added else True
    return _done(request, correction, back, "attached", logged=logged)


async def _page(
    request: web.Request,
    correction: Correction,
    *,
    back: str,
    notice: str | None = None,
    error: str | None = None,
    chosen: set[str] | None = None,
    status: int = 200,
) -> web.Response:
    engine = request.app[REVIEW_ENGINE]
    attached = await engine.store.attached_questions(correction.id)
    suggestions = await engine.suggest_questions(correction.id, SUGGESTIONS_SHOWN)
    conversation_id = None
    if correction.turn_id is not None:
        conversation_id = (await engine.store.get_turn(correction.turn_id)).conversation_id
    return await render(
        request,
        "curated_questions.html",
        {
            "c": correction,
            "attached": attached,
            "suggestions": suggestions,
            "likely": [q for q in suggestions if q.likely_same],
            "others": [q for q in suggestions if not q.likely_same],
            "chosen": chosen or set(),
            "conversation_id": conversation_id,
            "notice": notice,
            "error": error,
            "back": back,
        },
        status=status,
    )


def _done(
    request: web.Request, correction: Correction, back: str, notice: str, *, logged: bool = True
) -> web.Response:
    location = questions_url(
        request, correction, notice=notice, back=back, unlogged="" if logged else "1"
    )
    return web.Response(status=303, headers={"Location": location})


def questions_url(request: web.Request, correction: Correction, **query: str) -> str:
    """The page of a correction's questions (where correcting a reply leads)."""
    url = str(request.app.router["curated_questions"].url_for(correction_id=str(correction.id)))
    return with_query(url, **query)
