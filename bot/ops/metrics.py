"""The metrics page (charts over the last days, the hand-off trade-off, model and index
versions) and its JSON."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from aiohttp import web
from markupsafe import Markup

from bot.ops.auth import OpsError
from bot.ops.charts import Series, line_chart, stacked_bar_chart
from bot.ops.handoff import CHOSEN, UNLOGGED, handoff_view, recent_choices
from bot.ops.keys import DATABASE, OPS_CONFIG, REVIEW_ENGINE
from bot.ops.queries import (
    MetricsSummary,
    curated_replies,
    daily_metrics,
    index_versions,
    model_versions,
    retrain_cycles,
)
from bot.ops.render import format_ms, format_percent, render
from bot.web.errors import json_response

RANGES = (7, 14, 30, 90)


def chosen_days(request: web.Request) -> int:
    text = request.query.get("days")
    if text is None:
        return request.app[OPS_CONFIG].metrics_days
    if not text.isdigit() or not 1 <= int(text) <= 365:
        raise OpsError(400, "Bad request", "The number of days must be from 1 to 365.")
    return int(text)


async def _summary(request: web.Request, days: int) -> MetricsSummary:
    now = time.time()
    return await request.app[DATABASE].read(lambda conn: daily_metrics(conn, days=days, now=now))


async def metrics_page(request: web.Request) -> web.Response:
    days = chosen_days(request)
    summary = await _summary(request, days)
    database = request.app[DATABASE]
    engine = request.app[REVIEW_ENGINE]
    mode = engine.config.answer_mode
    versions = partial(
        model_versions, answer_mode=mode, auto_tolerance=engine.config.auto_tolerance
    )
    return await render(
        request,
        "metrics.html",
        {
            "days": days,
            "ranges": sorted({*RANGES, days}),
            "summary": summary,
            "charts": charts(summary),
            "counts": await request.app[REVIEW_ENGINE].store.counts(),
            "curated_replies": await database.read(curated_replies),
            "models": await database.read(versions),
            "answer_mode": mode,
            "generating": engine.generating,
            "indexes": await database.read(index_versions),
            "cycles": await database.read(retrain_cycles),
            "handoff": await handoff_view(request),
            "handoff_choices": await recent_choices(request),
            "handoff_notice": _chosen_notice(request),
            "handoff_error": UNLOGGED if request.query.get("unlogged") else None,
        },
    )


def _chosen_notice(request: web.Request) -> str | None:
    chosen = request.query.get("chosen", "")
    try:
        return CHOSEN.format(target=f"{float(chosen):.2f}") if chosen else None
    except ValueError:
        return None


def charts(summary: MetricsSummary) -> dict[str, Markup]:
    days = [d.day for d in summary.days]

    def count(value: float) -> str:
        return f"{value:.0f}"

    def percent(value: float) -> str:
        return format_percent(value, 0 if value >= 0.1 or value == 0 else 1)

    return {
        "ratings": stacked_bar_chart(
            "Ratings per day",
            days,
            [
                Series("up", "Helpful", [d.ratings_up for d in summary.days]),
                Series("down", "Not helpful", [d.ratings_down for d in summary.days]),
            ],
            count,
        ),
        "handoff": line_chart(
            "Hand-off rate per day",
            days,
            [Series("handoff", "Hand-off rate", [d.handoff_rate for d in summary.days])],
            percent,
            y_max=1.0,
        ),
        "fallback": line_chart(
            "Grounding-fallback rate per day",
            days,
            [Series("fallback", "Fallback rate", [d.fallback_rate for d in summary.days])],
            percent,
            y_max=1.0,
        ),
        "latency": line_chart(
            "Reply latency per day",
            days,
            [
                Series("p50", "Median (p50)", [d.latency_p50_ms for d in summary.days]),
                Series("p95", "p95", [d.latency_p95_ms for d in summary.days]),
            ],
            format_ms,
        ),
    }


async def metrics_json(request: web.Request) -> web.Response:
    """The same daily figures for scripts: ``GET /ops/api/metrics?days=N``."""
    summary = await _summary(request, chosen_days(request))
    return json_response(summary_json(summary))


def summary_json(summary: MetricsSummary) -> dict[str, Any]:
    return {
        "replies": summary.replies,
        "handoff_rate": summary.handoff_rate,
        "fallback_rate": summary.fallback_rate,
        "ratings": {"up": summary.ratings_up, "down": summary.ratings_down},
        "latency_ms": {"p50": summary.latency_p50_ms, "p95": summary.latency_p95_ms},
        "days": [
            {
                "day": d.day.isoformat(),
                "replies": d.replies,
                "handoffs": d.handoffs,
                "fallbacks": d.fallbacks,
                "handoff_rate": d.handoff_rate,
                "fallback_rate": d.fallback_rate,
                "ratings": {"up": d.ratings_up, "down": d.ratings_down},
                "latency_ms": {"p50": d.latency_p50_ms, "p95": d.latency_p95_ms},
            }
            for d in summary.days
        ],
    }
