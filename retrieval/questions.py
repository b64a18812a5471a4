"""Reading bulk question files: ``{"id", "messages": [{"role", "text"}, ...]}`` per line.

The last customer message is the question; everything before it is the conversation so far.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from retrieval.records import LogMessage, ParseIssue

_ROLE_ALIASES = {"customer": "customer", "user": "customer", "agent": "agent", "assistant": "agent"}


@dataclass(frozen=True)
class Question:
    id: str
    context: tuple[LogMessage, ...]
    customer_text: str


def read_questions(path: Path) -> Iterator[Question | ParseIssue]:
    """Yield questions in file order; malformed lines come out as ParseIssue and are skipped."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8-sig").strip()
            except UnicodeDecodeError:
                yield ParseIssue(str(path), number, "not valid UTF-8")
                continue
            if not line:
                continue
            try:
                yield _question(json.loads(line), path, number)
            except (ValueError, TypeError, KeyError) as exc:
                yield ParseIssue(str(path), number, str(exc))


def _question(record: object, path: Path, number: int) -> Question:
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object")
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    parsed: list[LogMessage] = []
    for message in messages:
        if not isinstance(message, dict):
            raise ValueError("each message must be an object")
        role = _ROLE_ALIASES.get(str(message.get("role", "")).lower())
        text = message.get("text", message.get("content"))
        if role is None:
            raise ValueError(f"unknown role {message.get('role')!r}")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("each message needs a non-empty 'text'")
        parsed.append(LogMessage(role, text.strip()))  # type: ignore[arg-type]
    if parsed[-1].role != "customer":
        raise ValueError("the last message must be the customer's question")
    question_id = str(record.get("id") or f"{path.stem}-{number}")
    return Question(question_id, tuple(parsed[:-1]), parsed[-1].text)
