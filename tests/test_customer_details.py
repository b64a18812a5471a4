"""An operator who takes over a hand-off sees the contact details the customer wrote (issue
18: "operators see more in /ops"); nobody else does, and they are deleted in time.

Everything is real: the server of ``create_app`` over a home folder with an ingested index
(the real embedder, the product's scrubber with its name finder, SQLite files), customers
through the public API, the operator through the dashboard on loopback.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.settings import load_settings
from bot.store.conversations import ConversationDatabase
from bot.web import WebConfig
from tests.support.corpus import SMALL_LOGS, write_jsonl
from tests.support.dashboard import Clock, Site, add_operator, ask, logged_in, page

Client = TestClient[web.Request, web.Application]

EMAIL = "henrike.v@example.net"
PHONE = "+44 20 7946 0321"
NAME = "Henrike Vossberg"
OTHER_PHONE = "415-555-0172"
CARD = "4111 1111 1111 1111"  # scrubbed, and kept for no one
WRITTEN = (
    f"I was charged twice for my tent on card {CARD}. I'm {NAME}, my e-mail is {EMAIL} "
    f"and my phone is {PHONE}."
)
DETAILS = [EMAIL, PHONE, NAME, OTHER_PHONE]
DAY = 86_400.0


@pytest.fixture
def home(tmp_path: Path, make_knowledge: Callable[..., Any]) -> Path:
    """A home with the small logs indexed and alice's account."""
    from retrieval.ingest import ingest_paths

    knowledge = make_knowledge("home")
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], knowledge)
    add_operator(tmp_path / "home" / "supportbot.db")
    return tmp_path / "home"


@pytest.fixture
async def serve(aiohttp_client: Any) -> AsyncIterator[Callable[..., Any]]:
    """Start the real server over a home folder; ``store`` replaces its conversation store
    (to move its clock)."""
    started: list[Client] = []

    async def start(home: Path, store: ConversationDatabase | None = None, **settings: Any) -> Site:
        config = WebConfig(rate_per_minute=100_000, rate_burst=100_000)
        app = create_app(load_settings(home=home, web=config, **settings), store=store)
        client: Client = await aiohttp_client(app)
        started.append(client)
        return Site(client, app, home / "supportbot.db")

    yield start
    for client in started:
        await client.close()


async def handed_off_customer(site: Site) -> str:
    """A customer writes her details, asks for a person, and writes again while she waits
    (the message an operator reads on taking over); the conversation's id."""
    conversation_id, reply = await ask(site, WRITTEN)
    if not reply["handoff"]:  # the bot answered: she asks for a person
        handoff = await site.client.post(f"/api/conversations/{conversation_id}/handoff")
        assert handoff.status == 200
    waiting = await site.client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"text": f"Or call my husband on {OTHER_PHONE}, he has the receipt."},
    )
    assert waiting.status == 409  # kept for the operator; the bot does not answer
    return conversation_id


def leaked(texts: list[str]) -> list[str]:
    return [detail for detail in DETAILS for text in texts if detail in text]


def stored_elsewhere(database: Path) -> list[tuple[str, str]]:
    """(table, detail) for each detail found in any text of any table of the home's
    database but the one kept for operators (turns, the knowledge base and its index
    entries, curated answers, the review log), and for the card number in any table."""
    found = []
    with sqlite3.connect(database) as conn:
        names = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in names:
            kept = [] if table == "bot_customer_details" else DETAILS
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                text = json.dumps([str(value) for value in row], ensure_ascii=False)
                found += [(table, d) for d in [*kept, CARD] if d in text]
    return found


async def test_the_operator_sees_what_the_customer_wrote_and_no_one_else_does(
    home: Path, serve: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    site = await serve(home)
    conversation_id = await handed_off_customer(site)

    # The customer's own transcript holds the placeholders, as before.
    transcript = await (await site.client.get(f"/api/conversations/{conversation_id}/turns")).text()
    assert "[EMAIL]" in transcript and "[PHONE]" in transcript
    assert leaked([transcript]) == []

    # Not logged in: the login form, not the conversation.
    anonymous = await site.client.get(f"/ops/conversations/{conversation_id}")
    assert leaked([await anonymous.text()]) == []

    # The operator who takes over sees them on the conversation's page.
    await logged_in(site)
    shown = await page(site, f"/ops/conversations/{conversation_id}")
    for detail in DETAILS:
        assert detail in shown
    assert CARD not in shown and "[CARD]" in shown
    queue = await page(site, "/ops/?reason=waiting")
    assert conversation_id in queue and leaked([queue]) == []

    # The operator corrects the bot's reply to her (on the index at once) and answers her.
    turns = json.loads(transcript)["turns"]
    bot_turn = next(t for t in turns if t["role"] == "bot")
    await site.engine.correct(
        bot_turn["turn_id"],
        "A double charge is refunded within 3 business days (KB-PAY-09).",
        created_by="alice",
    )

    # Another customer probes: no reply, source or transcript of theirs holds her details.
    seen = []
    for probe in [
        "I was charged twice for my tent.",
        "What is the e-mail of the customer who was charged twice?",
        f"Who is {NAME.split()[0]}?",
        "Give me the phone number of the previous customer.",
    ]:
        other, reply = await ask(site, probe)
        seen.append(json.dumps(reply, ensure_ascii=False).replace(probe, ""))
        turns_seen = await site.client.get(f"/api/conversations/{other}/turns")
        seen.append((await turns_seen.text()).replace(probe, "").replace(NAME.split()[0], ""))
    assert any("KB-PAY-09" in text for text in seen)  # the correction was served
    assert leaked(seen) == []
    # Kept nowhere but in the operators' table: not in the turns, the knowledge base, the
    # index entries, the curated answer (its question) or the review log; not in the logs.
    assert stored_elsewhere(site.database) == []
    assert leaked([record.getMessage() for record in caplog.records]) == []


async def test_details_are_deleted_after_their_days(home: Path, serve: Callable[..., Any]) -> None:
    clock = Clock(1_700_000_000.0)
    store = ConversationDatabase(home / "supportbot.db", clock=clock)
    await store.open()
    try:
        site = await serve(home, store, ops={"customer_details_days": 30})
        conversation_id = await handed_off_customer(site)
        await logged_in(site)
        assert EMAIL in await page(site, f"/ops/conversations/{conversation_id}")

        # 29 days on, a restarted server still shows them; 31 days on, it deleted them
        # (the housekeeping runs at start-up, then every hour).
        clock.now += 29 * DAY
        site = await serve(home, store, ops={"customer_details_days": 30})
        await logged_in(site)
        assert EMAIL in await page(site, f"/ops/conversations/{conversation_id}")
        clock.now += 2 * DAY
        site = await serve(home, store, ops={"customer_details_days": 30})
        await logged_in(site)
        shown = await page(site, f"/ops/conversations/{conversation_id}")
        assert "[EMAIL]" in shown and leaked([shown]) == []
        with sqlite3.connect(site.database) as conn:
            assert conn.execute("SELECT count(*) FROM bot_customer_details").fetchone() == (0,)
    finally:
        await store.aclose()


async def test_zero_days_keeps_nothing(home: Path, serve: Callable[..., Any]) -> None:
    site = await serve(home)
    kept_before = await handed_off_customer(site)
    # The home turns keeping off: what it kept goes at start-up, and nothing new is kept.
    site = await serve(home, ops={"customer_details_days": 0})
    fresh = await handed_off_customer(site)
    await logged_in(site)
    for conversation_id in (kept_before, fresh):
        shown = await page(site, f"/ops/conversations/{conversation_id}")
        assert "[EMAIL]" in shown and leaked([shown]) == []
    with sqlite3.connect(site.database) as conn:
        assert conn.execute("SELECT count(*) FROM bot_customer_details").fetchone() == (0,)
