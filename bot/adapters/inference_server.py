"""The Generator port over an OpenAI-compatible inference server (vLLM, TGI).

The server is sent the prompt the in-process model would see (:mod:`finetune.prompting`):
chat messages for ``/chat/completions``, the plain transcript for ``/completions``. Replies
stream back as server-sent events; the engine checks them for grounding exactly as it
checks the local model's. Failures become :class:`ModelUnavailable`, on which the engine
falls back as it does for the local model.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp

from bot.adapters.config import GeneratorSettings
from bot.adapters.generation import prompt_request
from bot.core.errors import ModelUnavailable
from bot.core.types import GenerationRequest
from finetune.prompting import PLAIN_STOP_STRINGS, chat_messages, plain_prompt

log = logging.getLogger(__name__)

# Worth another attempt: the server is starting, overloaded or behind a restarting proxy.
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_ERROR_BODY_CHARS = 300


class _RetryableFailure(Exception):
    """A failure before the first token that another attempt may not meet."""


def client_session(config: GeneratorSettings) -> aiohttp.ClientSession:
    """The HTTP session for ``config``'s server; open it on the event loop that uses it.

    ``sock_read`` bounds each silence of the server (before the response, before the first
    token, between tokens), not the length of a reply.
    """
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=config.connect_timeout_s, sock_read=config.read_timeout_s
    )
    connector = aiohttp.TCPConnector(limit=config.max_connections)
    return aiohttp.ClientSession(timeout=timeout, connector=connector)


class InferenceServerGenerator:
    """Streams replies from an OpenAI-compatible server over ``session``.

    Connection errors and 429/5xx answers are retried ``max_retries`` times with doubling
    waits, but only until the first piece of text has been yielded: a reply is never sent
    twice. A silence longer than ``read_timeout_s`` is not retried (the server is up but
    stuck; the customer should not wait twice).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: GeneratorSettings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if config.endpoint is None or config.remote_model is None:
            raise ValueError("an inference server needs generator.endpoint and remote_model")
        self._session = session
        self._config = config
        self._sleep = sleep
        path = "/chat/completions" if config.remote_api == "chat" else "/completions"
        self._url = config.endpoint + path
        self._model = config.remote_model

    @property
    def version(self) -> str | None:
        return self._model

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        body = self._request_body(request)
        headers = {"Accept": "text/event-stream"}
        if self._config.api_key is not None:
            headers["Authorization"] = f"Bearer {self._config.api_key.get_secret_value()}"
        attempts = self._config.max_retries + 1
        for attempt in range(1, attempts + 1):
            started = False
            try:
                async for piece in self._attempt(body, headers):
                    started = True
                    yield piece
                return
            except _RetryableFailure as exc:
                if started or attempt == attempts:
                    raise ModelUnavailable(
                        f"inference server failed after {attempt} attempt(s): {exc}"
                    ) from None
                delay = self._config.retry_backoff_s * 2 ** (attempt - 1)
                log.warning(
                    "inference server at %s: %s; attempt %d of %d in %.2fs",
                    self._url,
                    exc,
                    attempt + 1,
                    attempts,
                    delay,
                )
                await self._sleep(delay)

    async def _attempt(self, body: dict[str, Any], headers: dict[str, str]) -> AsyncIterator[str]:
        """One request; raises _RetryableFailure when another attempt may succeed."""
        try:
            async with self._session.post(self._url, json=body, headers=headers) as response:
                await _check_status(response)
                async for piece in _text_pieces(response, self._config.remote_api):
                    yield piece
        except aiohttp.SocketTimeoutError:
            raise ModelUnavailable("inference server went silent (read timeout)") from None
        except aiohttp.ClientConnectionError as exc:  # refused, reset, connect timeout
            raise _RetryableFailure(f"cannot reach it ({type(exc).__name__}: {exc})") from None
        except aiohttp.ClientError as exc:
            raise ModelUnavailable(f"inference server: {type(exc).__name__}: {exc}") from None

    def _request_body(self, request: GenerationRequest) -> dict[str, Any]:

        prompt = prompt_request(request)
        instructions = self._config.instructions
        body: dict[str, Any] = {
            "model": self._model,
            "stream": True,
            "max_tokens": request.max_new_tokens or self._config.max_new_tokens,
            "temperature": self._config.temperature,
        }
        if self._config.remote_api == "chat":
            body["messages"] = chat_messages(
                instructions, prompt.history, prompt.evidence, prompt.customer_text
            )
        else:
            body["prompt"] = plain_prompt(
                instructions, prompt.history, prompt.evidence, prompt.customer_text
            )
            # A plain transcript has no end-of-turn token: the next speaker label ends it.
            body["stop"] = list(PLAIN_STOP_STRINGS)
        return body


async def _check_status(response: aiohttp.ClientResponse) -> None:
    if response.status == 200:
        return
    detail = (await response.text(errors="replace"))[:_ERROR_BODY_CHARS].strip()
    message = f"HTTP {response.status}" + (f": {detail}" if detail else "")
    if response.status in _RETRY_STATUSES:
        raise _RetryableFailure(message)
    raise ModelUnavailable(f"inference server answered {message}")


async def _text_pieces(response: aiohttp.ClientResponse, api: str) -> AsyncIterator[str]:
    """The reply's text pieces from the server-sent events of ``response``.

    Raises ModelUnavailable for an error event, a malformed chunk, a stream that ends
    without a finish reason, or a read timeout; _RetryableFailure for a lost connection
    (the caller retries only if no text was yielded yet).
    """
    finished = False
    try:
        async for raw in response.content:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line.startswith("data:"):
                continue  # blank separators, ": keep-alive" comments, "event:" lines
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                return
            choice = _first_choice(data)
            if choice is None:
                continue  # e.g. a usage-only chunk
            text = choice.get("delta", {}).get("content") if api == "chat" else choice.get("text")
            if choice.get("finish_reason"):
                finished = True
            if isinstance(text, str) and text:
                yield text
    except aiohttp.SocketTimeoutError:
        raise ModelUnavailable("inference server went silent (read timeout)") from None
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
        raise _RetryableFailure(f"connection lost mid-stream ({type(exc).__name__})") from None
    if not finished:
        raise ModelUnavailable("inference server ended the stream before the reply finished")


def _first_choice(data: str) -> dict[str, Any] | None:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise ModelUnavailable(
            f"malformed chunk from the inference server: {data[:80]!r}"
        ) from None
    if not isinstance(chunk, dict):
        raise ModelUnavailable(f"malformed chunk from the inference server: {data[:80]!r}")
    if "error" in chunk:
        raise ModelUnavailable(f"inference server error: {str(chunk['error'])[:200]}")
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices:
        return None
    first = choices[0]
    if not isinstance(first, dict):
        raise ModelUnavailable(f"malformed chunk from the inference server: {data[:80]!r}")
    return first
