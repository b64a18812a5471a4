"""Server-rendered pages: a Jinja2 environment with autoescaping on for every template.

Customer messages are hostile input: every value reaches the page through Jinja's
autoescaping (never ``|safe``); only the charts, built by :mod:`bot.ops.charts` from
numbers and escaped labels, are passed as markup.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from bot.ops.keys import DATABASE, SESSION, TEMPLATES
from bot.ops.queries import open_flag_count

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

REASON_LABELS = {
    "low_confidence": "Low confidence",
    "grounding_fallback": "Grounding fallback",
    "handoff": "Hand-off",
    "thumbs_down": "Thumbs down",
    "not_helpful": "Not helpful (Slack)",
    "unsure": "Sent, not sure",
}
STATUS_LABELS = {
    "open": "Open",
    "approved": "Approved",
    "corrected": "Corrected",
    "rejected": "Rejected",
    "resolved": "Resolved",
}
# A flag's detail in words, where it is a code rather than a sentence: the hand-off a
# customer asked for was shown as "customer_request".
DETAIL_LABELS = {
    "customer_request": "The customer asked for a person",
    "customer_details": "The customer gave details only a person can use",
}
OUTCOME_LABELS = {
    "generated": "Generated",
    "copied": "Copied",
    "handoff": "Handed off",
    "small_talk": "Small talk",
}


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        utc=format_utc,
        iso=format_iso,
        pct=format_percent,
        ms=format_ms,
        score=format_score,
        flag_detail=format_flag_detail,
    )
    env.globals.update(
        reason_labels=REASON_LABELS,
        status_labels=STATUS_LABELS,
        outcome_labels=OUTCOME_LABELS,
        with_query=with_query,
    )
    return env


async def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """``template`` as an HTML response, with the operator and the queue size for the
    navigation when someone is logged in."""
    session = request.get(SESSION)
    open_flags = None
    if session is not None:
        open_flags = await request.app[DATABASE].read(open_flag_count)
    page = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(
            {
                "operator": None if session is None else session.operator.name,
                "csrf_token": None if session is None else session.csrf_token,
                "open_flags": open_flags,
                "url": lambda name, **parts: str(request.app.router[name].url_for(**parts)),
                "current_path": request.path,
                **(context or {}),
            }
        )
    )
    return web.Response(
        text=page, status=status, content_type="text/html", charset="utf-8", headers=headers
    )


def with_query(path: str, **params: Any) -> str:
    """``path`` with the non-empty ``params`` as its query string."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def format_utc(timestamp: float | None) -> str:
    if timestamp is None:
        return "—"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def format_iso(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def format_percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def format_ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def format_score(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def format_flag_detail(detail: str) -> str:
    """A flag's detail as an operator reads it (:data:`DETAIL_LABELS`)."""
    return DETAIL_LABELS.get(detail, detail)
