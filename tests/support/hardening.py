"""Shared by the tests/test_hardening_*.py files and benchmarks/hardening.py.

``record`` appends a figure (cases run, failures, corpus size...) to the JSON-lines file
named by ``SUPPORTBOT_HARDENING_FIGURES`` when the benchmark runs the tests; in a plain
``pytest`` run it does nothing. ``live_server`` runs the real app on loopback in a thread,
for clients that are not asyncio (hypothesis, schemathesis, requests).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bot.app import create_app
from bot.settings import load_settings
from bot.web import WebConfig
from tests.support.browser import ServerThread
from tests.support.corpus import REPO
from tests.support.fakes import FakeGenerator, FakeRetriever

FIGURES_ENV = "SUPPORTBOT_HARDENING_FIGURES"

# Generous limits: these tests probe input handling, not the abuse limits.
# One loopback client stands for many customers: neither its rate nor its share of the
# review queue is what these tests measure.
UNLIMITED = WebConfig(
    rate_per_minute=100_000, rate_burst=100_000, flags_per_client_per_hour=100_000
)


def record(section: str, **figures: Any) -> None:
    """Add ``figures`` under ``section`` to the benchmark's figures file, if one is set."""
    target = os.environ.get(FIGURES_ENV)
    if not target:
        return
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"section": section, **figures}) + "\n")


@contextmanager
def live_server(
    home: Path,
    retriever: FakeRetriever,
    *,
    generator: FakeGenerator | None = None,
    web: WebConfig = UNLIMITED,
) -> Iterator[ServerThread]:
    """The real app (engine, SQLite store at ``home``, middlewares, dashboard) on 127.0.0.1."""
    settings = load_settings(home=home, web=web)
    with ServerThread(
        lambda: create_app(settings, retriever=retriever, generator=generator)
    ) as server:
        yield server


CORPUS = REPO / "tests" / "data" / "prompt_injection.jsonl"
