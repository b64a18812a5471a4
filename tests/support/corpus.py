"""Small support logs written as files, as a user's export would be."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def write_jsonl(path: Path, conversations: Sequence[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for conversation in conversations:
            fh.write(json.dumps(conversation) + "\n")
    return path


def exchange(conv_id: str, question: str, answer: str) -> dict[str, object]:
    return {
        "id": conv_id,
        "messages": [
            {"role": "customer", "text": question},
            {"role": "agent", "text": answer},
        ],
    }


SMALL_LOGS = [
    exchange(
        "c-ret",
        "How do I return boots that don't fit?",
        "Unworn items can be returned within 30 days, see KB-RET-01.",
    ),
    exchange(
        "c-ship",
        "When will my order arrive?",
        "Standard shipping takes 3-5 business days (KB-SHP-01).",
    ),
    exchange(
        "c-pwd",
        "I forgot my password and can't log in",
        "Use 'Forgot password' on the sign-in page; the link is valid 24 hours (KB-ACC-02).",
    ),
    exchange("c-gift", "Do gift cards expire?", "Gift cards never expire (KB-GFT-01)."),
    exchange(
        "c-cancel",
        "Please cancel my order, I ordered the wrong size",
        "Orders can be cancelled until they are packed, usually within 1 hour (KB-ORD-03).",
    ),
    {
        "id": "c-refund",
        "messages": [
            {"role": "customer", "text": "I sent back a tent last week."},
            {"role": "agent", "text": "Thanks, the warehouse logs returns within 2 days."},
            {"role": "customer", "text": "ok and when do I get my money?"},
            {"role": "agent", "text": "Refunds take 5-7 business days after we receive the item."},
        ],
    },
]
