"""Mounting the Slack adapter on the web application, and its lifetime.

:func:`setup_slack` adds, when Slack is configured, ``POST /slack/events`` (Events API mode)
and a ``cleanup_ctx`` that builds the bolt app after the engine exists, connects Socket Mode
if that is the mode, and at shutdown disconnects, waits for the replies being written and
closes the HTTP session and the adapter's tables. The route only converts an aiohttp request
into a bolt request and bolt's response back (bolt's own aiohttp adapter does the work).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from bot.settings import Settings
from bot.slack.client import Pacer, build_web_client
from bot.slack.config import SlackConfig
from bot.slack.delivery import Poster
from bot.slack.listeners import TrackedLazyListenerRunner, build_bolt_app
from bot.slack.state import SlackState
from bot.slack.support import SlackEngine, SlackSupport
from bot.web import ENGINE
from retrieval.database import sqlite_url

if TYPE_CHECKING:
    from slack_bolt.app.async_app import AsyncApp

    from bot.slack.state import SlackState

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
SLACK_APP: web.AppKey[AsyncApp] = web.AppKey("slack_app")
_SHUTDOWN_GRACE_S = 10.0


def setup_slack(app: web.Application, settings: Settings) -> None:
    """Add the Slack adapter to ``app`` if ``settings.slack`` turns it on (after the engine's
    ``cleanup_ctx``, so that it closes before the engine and the store)."""
    config = settings.slack
    mode = config.resolved_mode
    if mode == "off":
        return
    if mode == "http":
        app.router.add_post(EVENTS_PATH, slack_events, name="slack_events")
    app.cleanup_ctx.append(
        partial(
            _slack_ctx,
            config=config,
            database=settings.paths.database,
            postgres_url=settings.storage.postgres_url,
        )
    )


async def slack_events(request: web.Request) -> web.Response:
    """Slack's Events API and interactivity requests; bolt verifies the signature (401)."""
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

    bolt = request.app.get(SLACK_APP)
    if bolt is None:
        raise web.HTTPServiceUnavailable(text="Slack is starting")
    response = await bolt.async_dispatch(await to_bolt_request(request))
    return await to_aiohttp_response(response)


def _slack_state(database: Path, postgres_url: str | None) -> SlackState:
    """Replicas sharing PostgreSQL share the Slack state too: an event retried on another
    replica is still answered once, and every replica knows every thread and hand-off."""

    return SlackState(postgres_url or sqlite_url(database))


async def _slack_ctx(
    app: web.Application, *, config: SlackConfig, database: Path, postgres_url: str | None
) -> AsyncIterator[None]:
    import aiohttp

    engine = app[ENGINE]
    if not isinstance(engine, SlackEngine):
        raise TypeError("the Slack adapter needs an engine with hand-off and operator turns")
    state = _slack_state(database, postgres_url)
    await state.open()
    session = aiohttp.ClientSession()
    runner = TrackedLazyListenerRunner(logging.getLogger("bot.slack.lazy"))
    connecting: asyncio.Task[None] | None = None
    handler = None
    try:
        pacer = Pacer()
        client = build_web_client(config, session, pacer)
        support = SlackSupport(engine, state, Poster(client, config, pacer), config)
        # bolt's client (auth.test, copied into each request) opens a connection per call.
        bolt_client = build_web_client(config, None, pacer)
        bolt = build_bolt_app(config, bolt_client, support, state, runner)
        if config.resolved_mode == "socket":
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            handler = AsyncSocketModeHandler(bolt, config.secret("app_token"), web_client=client)
            # Connecting retries until Slack answers; the web server need not wait for it.
            connecting = asyncio.create_task(
                handler.connect_async(),  # type: ignore[no-untyped-call]
                name="slack-socket-mode",
            )
        app[SLACK_APP] = bolt
        log.info("Slack adapter on (%s mode, API %s)", config.resolved_mode, config.slack_api_url)
        yield
    finally:
        if handler is not None:
            await handler.close_async()  # type: ignore[no-untyped-call]
        if connecting is not None:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connecting
        await runner.drain(_SHUTDOWN_GRACE_S)
        await session.close()
        await state.aclose()
