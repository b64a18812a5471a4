"""The web adapter: JSON and server-sent-event API, demo page and widget, over aiohttp.

It translates HTTP into calls on the conversation engine (``app[ENGINE]``) and domain
errors into statuses; it loads no model and never imports torch.
"""

from __future__ import annotations

from aiohttp import web

from bot.web import handlers, pages
from bot.web.config import WebConfig
from bot.web.errors import json_response
from bot.web.keys import (
    ENGINE,
    METRICS,
    NEW_CONVERSATIONS,
    RATE_LIMITER,
    WEB_CONFIG,
    ChatEngine,
)
from bot.web.metrics import WebMetrics
from bot.web.middlewares import MIDDLEWARES, add_response_headers
from bot.web.openapi import DEFAULT_MAX_MESSAGE_CHARS, openapi_document
from bot.web.ratelimit import RateLimiter

__all__ = ["ENGINE", "METRICS", "WEB_CONFIG", "ChatEngine", "WebConfig", "build_web_app"]

_OPENAPI = web.AppKey("openapi", dict)
_LIMITS = web.AppKey("limits", dict)


async def _openapi(request: web.Request) -> web.Response:
    return json_response(request.app[_OPENAPI])


async def _limits(request: web.Request) -> web.Response:
    # The widget counts what is left of a message against the server's own limit, which
    # an operator may change, rather than a number of its own.
    return json_response(request.app[_LIMITS])


def build_web_app(
    config: WebConfig, *, max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS
) -> web.Application:
    """An application with every route, middleware and metric of the web adapter.

    ``max_message_chars`` (the engine's limit) is what the OpenAPI document promises and
    ``/api/limits`` tells the widget.

    The caller puts a :class:`ChatEngine` under ``app[ENGINE]`` (from a ``cleanup_ctx``)
    before requests arrive; until then ``/healthz`` answers 503.
    """
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=MIDDLEWARES)
    app[WEB_CONFIG] = config
    app[METRICS] = WebMetrics()
    app[RATE_LIMITER] = RateLimiter(
        config.rate_per_minute, config.rate_burst, max_keys=config.max_tracked_clients
    )
    app[NEW_CONVERSATIONS] = RateLimiter(
        config.new_conversations_per_minute, config.new_conversations_burst
    )
    app[_OPENAPI] = openapi_document(max_message_chars)
    app[_LIMITS] = {"max_message_chars": max_message_chars}
    app.on_response_prepare.append(add_response_headers)
    app.router.add_routes(
        [
            web.get("/", pages.demo_page, name="demo"),
            web.get("/widget.js", pages.widget_script, name="widget_js"),
            web.get("/widget.css", pages.widget_stylesheet, name="widget_css"),
            web.get("/healthz", handlers.healthz, name="healthz"),
            web.get("/metrics", handlers.metrics, name="metrics"),
            web.get("/api/openapi.json", _openapi, name="openapi"),
            web.get("/api/limits", _limits, name="limits"),
            web.post("/api/conversations", handlers.create_conversation, name="conversations"),
            web.post(
                "/api/conversations/{conversation_id}/messages",
                handlers.post_message,
                name="messages",
            ),
            web.post(
                "/api/conversations/{conversation_id}/handoff",
                handlers.request_handoff,
                name="handoff",
            ),
            web.get(
                "/api/conversations/{conversation_id}/turns",
                handlers.conversation_turns,
                name="turns",
            ),
            web.post("/api/turns/{turn_id}/rating", handlers.rate_turn, name="rating"),
        ]
    )
    return app
