"""The web API under test: settings for a home, its knowledge and the SSE stream's events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.settings import Settings, load_settings
from bot.web import WebConfig
from tests.support.fakes import FakeRetriever, source

RETURNS_ANSWER = (
    "Unworn items can be returned within 30 days, see https://shop.example.com/returns (KB-RET-01)."
)


SHIPPING_ANSWER = "Standard shipping takes 3-5 business days (KB-SHP-01)."


def make_settings(home: Path, web_config: WebConfig) -> Settings:
    """Settings whose ``web`` section is ``web_config``."""
    return load_settings(home=home, web=web_config)


def knowledge() -> FakeRetriever:
    return FakeRetriever(
        answers=[
            source("c-ret#1", "How do I return boots that don't fit?", RETURNS_ANSWER, 0.93),
            source("c-ship#1", "When will my order arrive?", SHIPPING_ANSWER, 0.31),
        ]
    )


def parse_sse(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].lstrip())
        events.append((name, json.loads("\n".join(data))))
    return events
