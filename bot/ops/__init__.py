"""The operators' review dashboard under ``/ops``: server-rendered pages over aiohttp.

Operators log in (accounts from ``supportbot operators add``), work through the queue of
flagged replies, read a conversation with each reply's sources and confidence, approve,
correct, reject or resolve a hand-off, edit or withdraw a curated answer, watch the
metrics and choose the hand-off target served. It is an adapter like the web API: it calls
the engine (``correct``, ``edit_correction``, ``withdraw_correction``, ``hand_back``,
``add_agent_turn``) and the store, and maps domain errors to pages; it never imports torch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Protocol, runtime_checkable

from aiohttp import web

from bot.core.errors import (
    ConversationNotFound,
    CorrectionNotFound,
    InvalidMessage,
    StorageUnavailable,
    TurnNotFound,
)
from bot.ops import actions, auth, curated, handoff, metrics, topics, views
from bot.ops.auth import OpsError, is_api, storage_full_error
from bot.ops.config import OpsConfig
from bot.ops.database import DashboardDatabase
from bot.ops.handoff import HANDOFF, HandoffTargets
from bot.ops.keys import (
    DATABASE,
    LOGIN_LIMITS,
    LOGIN_LOG,
    OPS_CONFIG,
    PREFIX,
    REVIEW_ENGINE,
    TEMPLATES,
    ReviewEngine,
)
from bot.ops.login_limits import LoginLimits
from bot.ops.login_log import LoginLog
from bot.ops.render import make_environment, render
from bot.store.health import out_of_space
from bot.web.errors import json_response
from bot.web.keys import ENGINE
from bot.web.middlewares import Handler
from retrieval.database import sqlite_url

__all__ = ["PREFIX", "OpsConfig", "ReviewEngine", "build_dashboard", "mount_dashboard"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@runtime_checkable
class _StoredAt(Protocol):
    url: str  # sqlite:///path or postgresql://...


def mount_dashboard(
    app: web.Application,
    config: OpsConfig,
    *,
    database: Path,
    handoff: HandoffTargets,
) -> None:
    """Serve the dashboard at ``/ops`` of ``app``, over the engine under ``app[ENGINE]``.

    Its tables go in the conversation store's own database (``store.url``: its SQLite
    file, or the PostgreSQL database where replicas share the accounts), else in
    ``database``. ``handoff`` is the hand-off threshold served,
    whose trade-off the metrics page shows and operators move. Add this after the engine's
    cleanup context: the dashboard's context needs the engine, and closes before it.
    """
    dashboard = build_dashboard(config)
    dashboard[HANDOFF] = handoff
    # Before the sub-application, whose prefix would otherwise match this path too.
    app.router.add_get(PREFIX, _to_dashboard, name="ops_root")
    app.add_subapp(PREFIX, dashboard)
    app.cleanup_ctx.append(partial(_dashboard_ctx, dashboard=dashboard, database=database))


def build_dashboard(config: OpsConfig) -> web.Application:
    """The dashboard application, to mount at ``/ops``; its state is set at start-up."""
    dashboard = web.Application(middlewares=[_error_pages, auth.session_middleware])
    dashboard[OPS_CONFIG] = config
    dashboard[TEMPLATES] = make_environment()
    dashboard[LOGIN_LIMITS] = LoginLimits(
        config.login_attempts_per_minute,
        config.login_burst,
        max_known=config.known_login_addresses,
    )
    dashboard[LOGIN_LOG] = LoginLog()
    dashboard.on_response_prepare.append(_security_headers)
    dashboard.router.add_routes(
        [
            web.get("/login", auth.login_page, name="login"),
            web.post("/login", auth.login_submit, name="login_submit"),
            web.post("/logout", auth.logout, name="logout"),
            web.get("/", views.queue, name="queue"),
            web.get("/conversations/{conversation_id}", views.conversation, name="conversation"),
            web.post(
                "/conversations/{conversation_id}/reply", actions.reply, name="conversation_reply"
            ),
            web.post(
                "/conversations/{conversation_id}/hand-back",
                actions.hand_back,
                name="conversation_hand_back",
            ),
            web.post("/turns/{turn_id}/approve", actions.approve, name="turn_approve"),
            web.post("/turns/{turn_id}/correct", actions.correct, name="turn_correct"),
            web.post("/turns/{turn_id}/reject", actions.reject, name="turn_reject"),
            web.post("/turns/{turn_id}/resolve", actions.resolve_handoff, name="turn_resolve"),
            web.get("/curated", curated.curated_list, name="curated"),
            web.get("/curated/{correction_id}", curated.curated_edit_page, name="curated_edit"),
            web.post("/curated/{correction_id}/edit", curated.edit, name="curated_save"),
            web.post(
                "/curated/{correction_id}/withdraw", curated.withdraw, name="curated_withdraw"
            ),
            web.get(
                "/curated/{correction_id}/questions",
                topics.questions_page,
                name="curated_questions",
            ),
            web.post("/curated/{correction_id}/attach", topics.attach, name="curated_attach"),
            web.get("/metrics", metrics.metrics_page, name="metrics"),
            web.get("/api/metrics", metrics.metrics_json, name="api_metrics"),
            web.post("/handoff", handoff.choose_target, name="handoff_target"),
            web.static("/static", STATIC, name="static"),
        ]
    )
    return dashboard


async def _dashboard_ctx(
    app: web.Application, *, dashboard: web.Application, database: Path
) -> AsyncIterator[None]:
    engine = app[ENGINE]
    if not isinstance(engine, ReviewEngine):
        raise TypeError("the review dashboard needs the engine's correct, hand_back and store")
    stored = engine.store
    opened = DashboardDatabase(
        stored.url if isinstance(stored, _StoredAt) else sqlite_url(database)
    )
    try:
        await opened.open()
        dashboard[DATABASE] = opened
        dashboard[REVIEW_ENGINE] = engine
        yield
    finally:
        await opened.aclose()


async def _to_dashboard(request: web.Request) -> web.Response:
    return web.Response(status=308, headers={"Location": f"{PREFIX}/"})


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.match_info.route.name == "static":
        response.headers["Cache-Control"] = "no-cache"
    else:  # pages hold customer messages: no copies in shared or browser caches
        response.headers["Cache-Control"] = "no-store"


@web.middleware
async def _error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain errors and refusals as pages (JSON under ``/ops/api/``); nothing leaks."""
    try:
        return await handler(request)
    except OpsError as exc:
        return await _error(request, exc)
    except (ConversationNotFound, TurnNotFound, CorrectionNotFound):
        return await _error(
            request, OpsError(404, "Not found", "There is no such conversation or reply.")
        )
    except InvalidMessage as exc:
        return await _error(request, OpsError(422, "Not possible", str(exc)))
    except StorageUnavailable:  # the store logged the cause once
        return await _error(request, storage_full_error())
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        title = "Not found" if exc.status == 404 else exc.reason
        message = "There is nothing at this address." if exc.status == 404 else exc.reason
        return await _error(request, OpsError(exc.status, title, message))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if out_of_space(exc):  # a write outside the stores (the curated answers' index)
            log.error("dashboard %s %s: the disk is full (%s)", request.method, request.path, exc)
            return await _error(request, storage_full_error())
        log.exception("dashboard error on %s %s", request.method, request.path)
        return await _error(
            request, OpsError(500, "Something went wrong", "The action failed on our side.")
        )


async def _error(request: web.Request, error: OpsError) -> web.Response:
    if is_api(request):
        code = error.title.lower().replace(" ", "_")
        return json_response(
            {"error": code, "message": error.message}, status=error.status, headers=error.headers
        )
    try:
        return await render(
            request,
            "error.html",
            {"title": error.title, "message": error.message, "status": error.status},
            status=error.status,
            headers=error.headers,
        )
    except Exception:  # the page itself failed (the database is gone): plain text then
        log.exception("could not render the error page")
        return web.Response(text=error.message, status=error.status, headers=error.headers)
