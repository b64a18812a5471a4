"""Errors as the web client sees them: ``{"error": code, "message": text}`` and a status.

The core raises domain errors; this module is the one place that turns them into statuses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial
from typing import Any

from aiohttp import web

from bot.core.errors import (
    ConversationHandedOff,
    ConversationNotFound,
    InvalidMessage,
    ModelUnavailable,
    StorageUnavailable,
    SupportbotError,
    TurnNotFound,
)

# What the customer is told when writing to a handed-off conversation: only once an
# operator has written is it true that someone has taken it over.
PASSED_ON_MESSAGE = "Your message was passed on to our team; a person will answer here."
TAKEN_OVER_MESSAGE = (
    "Your message was passed on: a member of our team has taken over this conversation "
    "and will answer here."
)
# ... and when asking for a person a second time (the button of an older page).
ALREADY_WAITING_MESSAGE = "Our team already has your request; a person will answer here."
ALREADY_TAKEN_OVER_MESSAGE = (
    "A member of our team has taken over this conversation and will answer here."
)
MODEL_UNAVAILABLE_RETRY_SECONDS = 10
STORAGE_UNAVAILABLE_MESSAGE = (
    "We can't save new messages right now. Please try again in a few minutes; nothing you "
    "sent before is lost."
)
# Freeing disk space takes a person: retrying every few seconds would only add load.
STORAGE_UNAVAILABLE_RETRY_SECONDS = 60

dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


class ApiError(Exception):
    """Raised by the web layer itself (bad JSON, wrong fields, rate limit) to answer."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=dumps)


def error_response(error: ApiError) -> web.Response:
    return json_response(
        {"error": error.code, "message": error.message},
        status=error.status,
        headers=error.headers,
    )


def from_domain(exc: SupportbotError) -> ApiError:
    """The status and client-facing text of a domain error."""
    if isinstance(exc, ConversationNotFound):
        return ApiError(404, "conversation_not_found", "No conversation with this id.")
    if isinstance(exc, TurnNotFound):
        return ApiError(404, "turn_not_found", "No reply with this id.")
    if isinstance(exc, InvalidMessage):
        return ApiError(
            422, "invalid_message", _sentence(str(exc)) or "This message cannot be answered."
        )
    if isinstance(exc, ConversationHandedOff):
        return ApiError(409, "handed_off", _handed_off_message(exc))
    if isinstance(exc, ModelUnavailable):
        return ApiError(
            503,
            "model_unavailable",
            "The assistant cannot answer right now; please try again shortly.",
            {"Retry-After": str(MODEL_UNAVAILABLE_RETRY_SECONDS)},
        )
    if isinstance(exc, StorageUnavailable):
        # The store logged the cause (with its path) once; the client learns only that it
        # may retry, and that what it sent before is safe.
        return ApiError(
            503,
            "storage_unavailable",
            STORAGE_UNAVAILABLE_MESSAGE,
            {"Retry-After": str(STORAGE_UNAVAILABLE_RETRY_SECONDS)},
        )
    return ApiError(400, "request_failed", "The request could not be completed.")


def _handed_off_message(exc: ConversationHandedOff) -> str:
    if exc.message_kept:
        return TAKEN_OVER_MESSAGE if exc.taken_over else PASSED_ON_MESSAGE
    return ALREADY_TAKEN_OVER_MESSAGE if exc.taken_over else ALREADY_WAITING_MESSAGE


_HTTP_CODES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def code_for_status(status: int) -> str:
    """The ``error`` code of an HTTP status, for errors raised outside a route."""
    return _HTTP_CODES.get(status, "internal_error" if status >= 500 else "http_error")


def from_http(exc: web.HTTPException) -> ApiError:
    """A JSON body for aiohttp's own errors (unknown path, wrong method, body too large)."""
    code = code_for_status(exc.status)
    if exc.status == 413:
        message = "The request body is too large."
    elif exc.status == 404:
        message = "Nothing here."
    elif exc.status == 405:
        message = "This method is not allowed here."
    else:
        message = exc.reason
    keep = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
    return ApiError(exc.status, code, message, keep)


def _sentence(text: str) -> str:
    """A domain error's text as the API's other messages read, and as the widget shows it
    to a customer: "the message is empty" became "The message is empty."."""
    text = text.strip()
    if not text:
        return ""
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")
