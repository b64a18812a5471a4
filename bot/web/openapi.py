"""The OpenAPI 3.1 document of the routes in :func:`bot.web.build_web_app`.

A test compares the paths and methods here with the application's router, so a route
added without documentation fails CI.
"""

from __future__ import annotations

from typing import Any

import bot
from bot.web.payloads import MAX_COMMENT_CHARS


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR_TEXT = {
    400: "Malformed JSON or a field of the wrong type.",
    403: "The request's Origin is not an allowed site.",
    404: "Unknown conversation or reply.",
    409: "The conversation is with a human: the message was stored and an operator will answer.",
    413: "The body is over the configured size limit.",
    415: "The body is not application/json.",
    422: "The message or a field cannot be used (empty, too long).",
    429: "Rate limited; wait for Retry-After seconds.",
    500: "Unexpected server error (details are logged, not sent).",
    503: "The assistant cannot answer right now (model_unavailable), or nothing can be "
    "stored because the server's disk is full (storage_unavailable; nothing stored before "
    "is lost); retry after Retry-After seconds.",
}

_API_ERRORS = (403, 413, 429, 503)  # any /api/ route can answer these (503: a full disk)


def _responses(ok: dict[str, dict[str, Any]], *errors: int) -> dict[str, Any]:
    statuses = sorted({*errors, *_API_ERRORS, 500})
    return ok | {str(s): {"$ref": f"#/components/responses/E{s}"} for s in statuses}


_CONVERSATION_ID = {
    "name": "conversation_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}
_TURN_ID = {"name": "turn_id", "in": "path", "required": True, "schema": {"type": "string"}}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "Stable machine-readable code."},
            "message": {"type": "string", "description": "Text that can be shown to people."},
        },
    },
    "Source": {
        "type": "object",
        "required": ["source_id", "kind", "score", "links"],
        "properties": {
            "source_id": {"type": "string"},
            "kind": {"type": "string", "enum": ["log", "curated"]},
            "score": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "How closely the source matches the message, from 0 to 1 (its "
                "question's similarity; a curated answer's is raised a little, up to 1). "
                "Sources come best first.",
            },
            "links": {"type": "array", "items": {"type": "string", "format": "uri"}},
            "excerpt": {
                "type": "string",
                "description": "The start of the business's answer; absent where the reply "
                "already says it word for word (a copied answer) and when the server is "
                "configured not to expose source text. A past customer's question is never "
                "sent.",
            },
        },
    },
    "Reply": {
        "type": "object",
        "required": [
            "reply",
            "sources",
            "confidence",
            "handoff",
            "outcome",
            "turn_id",
            "certainty",
        ],
        "properties": {
            "reply": {"type": "string"},
            "sources": {"type": "array", "items": _ref("Source")},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "certainty": {
                "type": ["string", "null"],
                "enum": ["high", "medium", "low", None],
                "description": "How sure the bot is of an answer, to show customers instead "
                "of the number: the span from the server's hand-off threshold to 1 is cut in "
                "thirds. `low` is worth offering a person for. Null for a hand-off, and for "
                "the set reply to a greeting, thanks or a goodbye.",
            },
            "handoff": {
                "type": "boolean",
                "description": "True when the conversation was passed to a human.",
            },
            "outcome": {
                "type": "string",
                "enum": ["generated", "copied", "handoff", "small_talk"],
                "description": "How the reply was made: written by the model from the "
                "evidence, the best past answer sent as it is, a hand-off to a person, or the "
                "set reply to a greeting, thanks or a goodbye.",
            },
            "turn_id": {"type": "string", "description": "Rate this reply with it."},
        },
    },
    "Turn": {
        "type": "object",
        "required": ["turn_id", "role", "text", "created_at"],
        "properties": {
            "turn_id": {"type": "string"},
            "role": {"type": "string", "enum": ["customer", "bot", "agent"]},
            "text": {"type": "string"},
            "created_at": {"type": "number", "description": "Unix time in seconds."},
        },
    },
    # MessageIn is added by openapi_document: its length limit is configurable.
    "RatingIn": {
        "type": "object",
        "required": ["rating"],
        "properties": {
            "rating": {"type": "string", "enum": ["up", "down"]},
            "comment": {"type": ["string", "null"], "maxLength": MAX_COMMENT_CHARS},
        },
    },
}

# At least one character that is neither whitespace nor a control character: the engine
# strips both, and a message with nothing left is refused (422). The class matches
# Python's str.isspace() exactly, written with escapes that ECMA-262 and Python both read.
VISIBLE_CHARACTER = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
DEFAULT_MAX_MESSAGE_CHARS = 2000


def _message_in(max_chars: int) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["text"],
        "properties": {
            "text": {
                "type": "string",
                "minLength": 1,
                # The limit counts the text after cleaning; a raw text this long always fits.
                "maxLength": max_chars,
                "pattern": VISIBLE_CHARACTER,
                "description": "The customer's message. Control characters are removed and "
                "surrounding whitespace stripped; nothing left, or more than the limit, is 422.",
            }
        },
    }


_SSE_DESCRIPTION = """\
Sent when the request's Accept header asks for `text/event-stream`. Events, each with
one JSON `data` line:

* `delta` `{"text"}`: more reply text, append it;
* `retract` `{"reason"}`: drop the text streamed so far, the `done` reply replaces it;
* `done`: the full reply, as in the JSON response; the stream ends after it;
* `error` `{"error", "message"}`: the reply failed; the stream ends after it.

Errors found before the first event (unknown conversation, hand-off, invalid message)
are answered with their status and a JSON body instead of a stream."""


def _paths() -> dict[str, Any]:
    text_html = {"content": {"text/html": {"schema": {"type": "string"}}}}
    return {
        "/": {
            "get": {
                "operationId": "demoPage",
                "summary": "Demo page with the chat widget",
                "tags": ["widget"],
                "responses": {"200": {"description": "HTML page", **text_html}},
            }
        },
        "/widget.js": {
            "get": {
                "operationId": "widgetScript",
                "summary": "The embeddable widget (one script tag on any page)",
                "tags": ["widget"],
                "responses": {
                    "200": {
                        "description": "JavaScript",
                        "content": {"text/javascript": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/widget.css": {
            "get": {
                "operationId": "widgetStylesheet",
                "summary": "The widget's styles, loaded by widget.js into its shadow root",
                "tags": ["widget"],
                "responses": {
                    "200": {
                        "description": "CSS",
                        "content": {"text/css": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Liveness and readiness",
                "tags": ["operations"],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "status": {"enum": ["ok", "degraded"]},
                                "storage": {
                                    "type": "object",
                                    "description": "Only while degraded: the store cannot "
                                    "write (its disk is full) since a time, and how many "
                                    "writes it refused.",
                                    "properties": {
                                        "writable": {"type": "boolean"},
                                        "reason": {"const": "disk_full"},
                                        "since": {"type": "number"},
                                        "refused_writes": {"type": "integer"},
                                    },
                                },
                            },
                        },
                        "Serving; degraded while nothing can be stored",
                    ),
                    "503": _json(
                        {"type": "object", "properties": {"status": {"type": "string"}}},
                        "Still starting",
                    ),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "description": "Not public: with `web.metrics_token` set, only a request "
                "with `Authorization: Bearer <token>` is answered (401 otherwise); without "
                "one, only a client on the server's own machine (404 to others, as for an "
                "unknown path). The health port (`server.health_port`) answers without "
                "either.",
                "tags": ["operations"],
                "security": [{"metricsToken": []}, {}],
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": {
                        **_json(_ref("Error"), "A token is set and the request lacks it."),
                        "headers": {
                            "WWW-Authenticate": {
                                "description": 'Bearer realm="metrics"',
                                "schema": {"type": "string"},
                            }
                        },
                    },
                    "404": _json(
                        _ref("Error"), "No token is set and the client is not on this machine."
                    ),
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "tags": ["operations"],
                "responses": _responses({"200": _json({"type": "object"}, "OpenAPI 3.1 document")}),
            }
        },
        "/api/limits": {
            "get": {
                "operationId": "limits",
                "summary": "The limits a client checks before sending (the widget's counter)",
                "tags": ["chat"],
                "responses": _responses(
                    {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["max_message_chars"],
                                "properties": {
                                    "max_message_chars": {
                                        "type": "integer",
                                        "minimum": 1,
                                        "description": "The most characters a message may "
                                        "have, once surrounding whitespace is removed",
                                    }
                                },
                            },
                            "The server's limits",
                        )
                    }
                ),
            }
        },
        "/api/conversations": {
            "post": {
                "operationId": "startConversation",
                "summary": "Start a conversation",
                "tags": ["chat"],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": _responses(
                    {
                        "201": _json(
                            {
                                "type": "object",
                                "required": ["conversation_id"],
                                "properties": {"conversation_id": {"type": "string"}},
                            },
                            "Created",
                        )
                    },
                    400,
                    415,
                ),
            }
        },
        "/api/conversations/{conversation_id}/messages": {
            "post": {
                "operationId": "sendMessage",
                "summary": "Send a customer message and get the reply",
                "tags": ["chat"],
                "parameters": [_CONVERSATION_ID],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("MessageIn")}},
                },
                "responses": _responses(
                    {
                        "200": {
                            "description": "The reply, as JSON or as server-sent events.\n\n"
                            + _SSE_DESCRIPTION,
                            "headers": {
                                "Cache-Control": {
                                    "description": "`no-cache` on event streams",
                                    "schema": {"type": "string"},
                                }
                            },
                            "content": {
                                "application/json": {"schema": _ref("Reply")},
                                "text/event-stream": {"schema": {"type": "string"}},
                            },
                        }
                    },
                    400,
                    404,
                    409,
                    415,
                    422,
                    503,
                ),
            }
        },
        "/api/conversations/{conversation_id}/handoff": {
            "post": {
                "operationId": "requestHandoff",
                "summary": "Ask for a human; the bot stays quiet in this conversation",
                "tags": ["chat"],
                "parameters": [_CONVERSATION_ID],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": _responses(
                    {"200": _json(_ref("Reply"), "What the customer is told")},
                    400,
                    404,
                    409,
                    415,
                    422,
                ),
            }
        },
        "/api/conversations/{conversation_id}/turns": {
            "get": {
                "operationId": "conversationTurns",
                "summary": "The conversation so far (customer, bot and operator turns)",
                "tags": ["chat"],
                "parameters": [_CONVERSATION_ID],
                "responses": _responses(
                    {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["conversation_id", "state", "turns"],
                                "properties": {
                                    "conversation_id": {"type": "string"},
                                    "state": {
                                        "enum": ["bot", "human", "closed"],
                                        "description": "Who answers the next message: the"
                                        " bot; a person (handed off: the bot stays quiet until"
                                        " an operator hands it back); or, closed, the bot"
                                        " again, reopening the conversation.",
                                    },
                                    "turns": {"type": "array", "items": _ref("Turn")},
                                },
                            },
                            "Turns, oldest first",
                        )
                    },
                    404,
                ),
            }
        },
        "/api/turns/{turn_id}/rating": {
            "post": {
                "operationId": "rateReply",
                "summary": "Rate a bot reply (a second rating replaces the first)",
                "tags": ["chat"],
                "parameters": [_TURN_ID],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("RatingIn")}},
                },
                "responses": _responses(
                    {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["turn_id", "rating"],
                                "properties": {
                                    "turn_id": {"type": "string"},
                                    "rating": {"type": "string", "enum": ["up", "down"]},
                                },
                            },
                            "Stored",
                        )
                    },
                    400,
                    404,
                    415,
                    422,
                ),
            }
        },
    }


def openapi_document(max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS) -> dict[str, Any]:
    """The document; ``max_message_chars`` is the engine's limit on a message."""
    error = _json(_ref("Error"), "")
    responses = {
        f"E{status}": {**error, "description": text} for status, text in _ERROR_TEXT.items()
    }
    for status in (429, 503):
        responses[f"E{status}"]["headers"] = {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "supportbot",
            "version": bot.__version__,
            "description": "Customer-service chat API behind the supportbot widget. Errors "
            'are JSON `{"error", "message"}`. Browsers may call it from the server\'s '
            "own origin and from the configured allowed origins (CORS).",
        },
        "paths": _paths(),
        "components": {
            "schemas": _SCHEMAS | {"MessageIn": _message_in(max_message_chars)},
            "responses": responses,
            "securitySchemes": {
                "metricsToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`web.metrics_token`, for GET /metrics on the main port.",
                }
            },
        },
    }
