"""Request bodies in, response bodies out: validation of what clients send and the JSON
shapes of replies, sources and turns (the same shapes the OpenAPI document describes)."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from bot.core.types import Reply, Source, Turn
from bot.web.errors import ApiError
from retrieval.chat_ready import chat_ready

_JSON_TYPES = ("application/json",)
_URL = re.compile(r"https?://[^\s<>\"'`{}|\\^\[\]]+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?)"
MAX_COMMENT_CHARS = 2000
_EXCERPT_CHARS = 160
_WORD = re.compile(r"\w+")
_GREETING_LINE = re.compile(
    r"^(?:hi|hello|hey|dear|good (?:morning|afternoon|evening))\b[^.!?]{0,40}[,!.:]?$", re.I
)


async def read_json_object(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    """The request body as a JSON object; ``{}`` for an absent optional body.

    Raises ApiError 415 (not JSON), 400 (malformed), 413 (too large, while reading).
    """
    if not request.body_exists or request.content_length == 0:
        if required:
            raise ApiError(400, "invalid_json", "Send a JSON object as the request body.")
        return {}
    content_type = request.content_type.lower()
    if content_type not in _JSON_TYPES and not content_type.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    body = await request.read()  # bounded by the app's client_max_size
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "The body is not valid UTF-8 JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The body must be a JSON object.")
    return data


def text_field(
    data: dict[str, Any], name: str, *, required: bool, max_chars: int | None = None
) -> str | None:
    """A string field; raises ApiError 400 for a wrong type or unencodable text, 422 when
    over ``max_chars``."""
    value = data.get(name)
    if value is None:
        if required:
            raise ApiError(400, "invalid_request", f"'{name}' is required.")
        return None
    if not isinstance(value, str):
        raise ApiError(400, "invalid_request", f"'{name}' must be a string.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from \ud800-style JSON escapes
        raise ApiError(400, "invalid_request", f"'{name}' is not valid Unicode text.") from None
    if max_chars is not None and len(value) > max_chars:
        raise ApiError(422, "invalid_request", f"'{name}' is longer than {max_chars} characters.")
    return value


def wants_event_stream(request: web.Request) -> bool:
    """True when the Accept header lists ``text/event-stream`` (with a quality above 0)."""
    for part in request.headers.get("Accept", "").split(","):
        media, *params = part.split(";")
        if media.strip().lower() != "text/event-stream":
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


def links_in(text: str) -> list[str]:
    """http(s) links in a past reply, in order, without duplicates or trailing punctuation."""
    links: list[str] = []
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_URL_TRAILING)
        if url not in links:
            links.append(url)
    return links


def source_json(source: Source, *, with_text: bool, reply: str = "") -> dict[str, Any]:
    """What a customer may see of a source: its links and, ``with_text``, the start of the
    business's answer unless ``reply`` already says it. Never the past customer's question:
    it is another customer's words (their names, order numbers, what they bought), however
    well scrubbed."""
    data: dict[str, Any] = {
        "source_id": source.source_id,
        "kind": source.kind,
        "score": round(source.shown_score, 4),
        "links": links_in(source.agent_reply),
    }
    if with_text:
        # A past agent's reply reads as the engine copies it, without its e-mail forms: the
        # excerpt then ends where the copied reply does, and is seen to repeat it.
        answer = source.agent_reply
        if source.kind == "log":
            answer = chat_ready(answer, mid_conversation=True)
        excerpt = answer_excerpt(answer)
        if excerpt and not already_says(reply, excerpt):
            data["excerpt"] = excerpt
    return data


def already_says(reply: str, excerpt: str) -> bool:
    """True when ``reply`` says ``excerpt`` word for word (case, spacing and punctuation
    aside). A copied reply is its source's answer: its excerpt under the reply only
    repeated it ("Sources (1)" listing the reply's own text)."""
    said, quoted = _words(reply), _words(excerpt.removesuffix("…"))
    return bool(quoted) and any(
        said[i : i + len(quoted)] == quoted for i in range(len(said) - len(quoted) + 1)
    )


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def answer_excerpt(reply: str) -> str:
    """The start of an answer without its greeting line, on one line, at most
    ``_EXCERPT_CHARS`` long (cut at a word, with an ellipsis)."""
    lines = [line.strip() for line in reply.splitlines() if line.strip()]
    if len(lines) > 1 and _GREETING_LINE.match(lines[0]):
        lines = lines[1:]
    text = " ".join(" ".join(lines).split())
    if len(text) <= _EXCERPT_CHARS:
        return text
    cut = text[: _EXCERPT_CHARS - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def reply_json(reply: Reply, *, with_source_text: bool = True) -> dict[str, Any]:
    return {
        "reply": reply.text,
        "sources": [
            source_json(s, with_text=with_source_text, reply=reply.text) for s in reply.sources
        ],
        "confidence": round(float(reply.confidence), 4),
        "handoff": reply.handoff,
        # The README promised it and the API left it out: how the reply was made.
        "outcome": reply.outcome.value,
        "turn_id": reply.turn_id,
        # Clients show this, not the number: the step boundaries follow the server's
        # calibrated hand-off threshold, which a client cannot know.
        "certainty": reply.certainty,
    }


def turn_json(turn: Turn) -> dict[str, Any]:
    return {
        "turn_id": turn.id,
        "role": turn.role,
        "text": turn.text,
        "created_at": turn.created_at,
    }
