"""Posting the bot's messages so that a finished reply is never lost.

:class:`ProgressMessage` posts a placeholder in the thread at once, updates it with the text
written so far at most every ``progress_interval_s`` (skipping updates while Slack rate
limits ``chat.update``), and replaces it with the finished reply. :func:`deliver` retries a
message that must arrive (a finished reply, a hand-off) beyond the client's own retries,
honouring ``Retry-After``, and falls back to a new message when the placeholder is gone.
Failures are logged with the channel and thread, never with the text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.blocks import Block, escape, fallback_text, progress_blocks
from bot.slack.client import PERMANENT_ERRORS, Pacer, note_rate_limit
from bot.slack.config import SlackConfig
from bot.slack.events import ButtonClick
from bot.slack.state import Thread

log = logging.getLogger(__name__)

_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
_WRITING_MARK = " …"

Sleep = Callable[[float], Awaitable[None]]


class Poster:
    """Sends the bot's messages through one client, with the retries a message needs."""

    def __init__(
        self,
        client: AsyncWebClient,
        config: SlackConfig,
        pacer: Pacer,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self.config = config
        self.pacer = pacer
        self._sleep = sleep

    async def post(
        self, thread: Thread, text: str, blocks: Sequence[Block] | None = None
    ) -> str | None:
        """Post a message that must arrive in ``thread``; its ts, or None if it could not be
        delivered (logged)."""
        return await self.deliver(thread, text, blocks, update_ts=None)

    async def deliver(
        self,
        thread: Thread,
        text: str,
        blocks: Sequence[Block] | None,
        *,
        update_ts: str | None,
    ) -> str | None:
        """Replace message ``update_ts`` (or post a new one) with ``text`` (Slack markup,
        already escaped where needed) and ``blocks``.

        Tries ``final_delivery_attempts`` times, each after the client's own retries, waiting
        as long as a rate limit asks; posts a new message instead when the one to update is
        gone. Returns the ts of the message that holds the text, or None (logged as an
        error naming the channel and thread).
        """
        ts = update_ts
        backoff = self.config.final_retry_backoff_s
        last_error = "no attempt"
        failures = 0
        while failures < self.config.final_delivery_attempts:
            method = "chat.update" if ts else "chat.postMessage"
            try:
                if ts:
                    await self.client.chat_update(
                        channel=thread.channel, ts=ts, text=fallback_text(text), blocks=blocks
                    )
                    return ts
                response = await self.client.chat_postMessage(
                    channel=thread.channel,
                    thread_ts=thread.thread_ts or None,  # "": the top of the channel
                    text=fallback_text(text),
                    blocks=blocks,
                )
                return str(response["ts"])
            except SlackApiError as exc:
                error = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
                last_error = f"{method}: {error}"
                if error in _GONE and ts:
                    ts = None  # the placeholder was deleted: post the reply anew
                    continue
                if error == "invalid_blocks" and blocks:
                    blocks = None  # the text alone is better than nothing
                    continue
                if error in PERMANENT_ERRORS:
                    break
                wait = backoff
                if exc.response.status_code == 429:
                    wait = max(wait, note_rate_limit(self.pacer, method, exc))
            except (aiohttp.ClientError, TimeoutError) as exc:
                last_error = f"{method}: {type(exc).__name__}"
                wait = backoff
            failures += 1
            if failures < self.config.final_delivery_attempts:
                await self._sleep(wait)
                backoff *= 2
        log.error(
            "could not deliver a message to Slack channel %s thread %s (%s); it stays stored",
            thread.channel,
            thread.thread_ts,
            last_error,
        )
        return None

    async def try_call(self, what: str, call: Awaitable[Any]) -> Any | None:
        """Await an optional Web API call; on failure log ``what`` and return None."""
        try:
            return await call
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            reason = (
                exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
            )
            log.warning("Slack call failed: %s (%s)", what, reason)
            return None

    async def tell(self, click: ButtonClick, text: str) -> None:
        """A note only the user who clicked sees, in the thread of the button."""
        await self.try_call(
            f"ephemeral note in {click.channel}",
            self.client.chat_postEphemeral(
                channel=click.channel, user=click.user, text=text, thread_ts=click.thread.thread_ts
            ),
        )


class ProgressMessage:
    """A reply being written: a placeholder, throttled updates, then the finished reply.

    Only one update is in flight at a time, in a task this object owns; :meth:`finish`
    waits for it before sending the final text, so an older text never overwrites it.
    """

    def __init__(
        self,
        poster: Poster,
        thread: Thread,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.poster = poster
        self.thread = thread
        self.ts: str | None = None
        self._clock = clock
        self._text = ""
        self._shown = ""
        self._changed = asyncio.Event()
        self._done = asyncio.Event()
        self._updater: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Post the placeholder; a failure only means the reply is posted anew at the end."""
        config = self.poster.config
        response = await self.poster.try_call(
            f"placeholder in {self.thread.channel}",
            self.poster.client.chat_postMessage(
                channel=self.thread.channel,
                thread_ts=self.thread.thread_ts,
                text=config.placeholder_text,
                blocks=progress_blocks(config.placeholder_text),
            ),
        )
        if response is not None:
            self.ts = str(response["ts"])
            self._updater = asyncio.create_task(self._update_loop(), name="slack-progress")

    def show(self, text: str) -> None:
        """The reply text so far (replaces what was shown; an empty text after a retraction)."""
        self._text = text
        self._changed.set()

    async def finish(self, text: str, blocks: Sequence[Block]) -> str | None:
        """Show the finished reply; returns the ts of the message holding it, or None."""
        await self._stop_updates()
        return await self.poster.deliver(self.thread, text, blocks, update_ts=self.ts)

    async def discard(self) -> None:
        """Remove the placeholder (the bot is not answering after all)."""
        await self._stop_updates()
        if self.ts is not None:
            await self.poster.try_call(
                f"delete placeholder in {self.thread.channel}",
                self.poster.client.chat_delete(channel=self.thread.channel, ts=self.ts),
            )

    async def _stop_updates(self) -> None:
        self._done.set()
        if self._updater is not None:
            # Not cancelled: an update already sent must land before the final one.
            with contextlib.suppress(Exception):
                await self._updater

    async def _update_loop(self) -> None:
        interval = self.poster.config.progress_interval_s
        last = self._clock()
        while not self._done.is_set():
            await _first(self._changed.wait(), self._done.wait())
            # Throttle: at most one update per interval, whatever the stream's pace.
            delay = max(last + interval - self._clock(), self.poster.pacer.wait_s("chat.update"))
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._done.wait(), delay)
            if self._done.is_set():
                return
            self._changed.clear()
            if self._text == self._shown or self.poster.pacer.wait_s("chat.update") > 0:
                continue
            assert self.ts is not None  # the loop runs only once the placeholder is posted
            text = (
                (self._text + _WRITING_MARK) if self._text else self.poster.config.placeholder_text
            )
            await self.poster.try_call(
                f"progress update in {self.thread.channel}",
                self.poster.client.chat_update(
                    channel=self.thread.channel,
                    ts=self.ts,
                    text=fallback_text(escape(text)),
                    blocks=progress_blocks(text),
                ),
            )
            self._shown = self._text
            last = self._clock()


async def _first(*waits: Awaitable[Any]) -> None:
    """Return when the first of ``waits`` completes; the others are cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
