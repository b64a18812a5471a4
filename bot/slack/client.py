"""The Slack Web API client: slack_sdk's ``AsyncWebClient`` on the configured base URL.

Every call goes through it, so pointing ``slack_api_url`` at a fake redirects all of them.
It retries connection errors, 500/503 answers and rate-limited calls (sleeping for
``Retry-After``); :class:`Pacer` remembers until when each method is rate limited, so that
optional calls (progress updates) can be skipped instead of queued behind the limit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.config import SlackConfig

log = logging.getLogger(__name__)

# Errors that mean "this call will never succeed as it is"; retrying them is pointless.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "msg_too_long",
        "invalid_blocks",
        "no_text",
    }
)


def method_of(url: str) -> str:
    """``chat.update`` for ``https://slack.com/api/chat.update``."""
    return url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]


def retry_after_s(headers: Any, default: float = 1.0) -> float:
    """The ``Retry-After`` of a response's headers (a mapping, values str or list)."""
    for key in getattr(headers, "keys", lambda: ())():
        if str(key).lower() == "retry-after":
            value = headers[key]
            if isinstance(value, list | tuple):
                value = value[0] if value else None
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return default
    return default


class Pacer:
    """Until when each Web API method is rate limited, as Slack last said."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}

    def limited(self, method: str, seconds: float) -> None:
        self._until[method] = max(self._until.get(method, 0.0), self._clock() + seconds)

    def wait_s(self, method: str) -> float:
        """Seconds until ``method`` may be called again (0 when it may now)."""
        return max(0.0, self._until.get(method, 0.0) - self._clock())


class _PacedRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (sleeps Retry-After, then retries) that also tells the pacer."""

    def __init__(self, pacer: Pacer, max_retry_count: int) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._pacer = pacer

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is not None:
            wait = retry_after_s(response.headers)
            self._pacer.limited(method_of(request.url), wait)
            log.warning("Slack rate limited %s; retrying in %.0f s", method_of(request.url), wait)
        await super().prepare_for_next_attempt_async(
            state=state, request=request, response=response, error=error
        )


def note_rate_limit(pacer: Pacer, method: str, error: SlackApiError) -> float:
    """For a 429 the client gave up on: record it and return the wait Slack asked for."""
    wait = retry_after_s(error.response.headers)
    pacer.limited(method, wait)
    return wait


def build_web_client(
    config: SlackConfig, session: aiohttp.ClientSession | None, pacer: Pacer
) -> AsyncWebClient:
    """A client on the configured base URL with the retry handlers.

    Without ``session`` each call opens its own connection: that is the client bolt puts
    in each request's context, which it deep-copies for lazy listeners (a shared session
    cannot be copied). The bot's own calls use a client with a shared session.
    """
    handlers: list[AsyncRetryHandler] = [
        AsyncConnectionErrorRetryHandler(max_retry_count=config.api_max_retries),
        _PacedRateLimitRetryHandler(pacer, max_retry_count=config.api_max_retries),
        AsyncServerErrorRetryHandler(max_retry_count=config.api_max_retries),
    ]
    return AsyncWebClient(
        token=config.secret("bot_token"),
        base_url=config.slack_api_url,
        session=session,
        timeout=int(max(1, config.api_timeout_s)),
        retry_handlers=handlers,
        logger=logging.getLogger("bot.slack.web_client"),
    )
