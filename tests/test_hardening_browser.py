"""No XSS, checked in headless Chromium: markup from anywhere (the customer, a past answer
in the knowledge base and its excerpt shown as a source, a past question in the dashboard)
is shown as text by the widget and by the dashboard, and none of it runs.

The existing browser tests cover markup the customer types; here the bot's own reply and
its sources carry it too, as they would after ingesting a poisoned log.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.app import create_app
from bot.settings import load_settings
from tests.support.browser import CHROMIUM, ServerThread
from tests.support.dashboard import PASSWORD, add_operator
from tests.support.fakes import FakeGenerator, FakeRetriever, source, split_words
from tests.support.hardening import UNLIMITED, record

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium"),
]

HOSTILE_ANSWER = (
    'Returns are easy <img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script>'
    ' <a href="javascript:window.__xss = 3">click</a> <svg onload="window.__xss = 4"></svg>'
)
# The generated reply carries markup of its own, so that the source's excerpt (markup too)
# adds to the reply and is listed: an excerpt the reply already says is not sent.
HOSTILE_REPLY = 'Yes <img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script> easy.'
HOSTILE_QUESTION = 'How do I return <iframe src="javascript:window.__xss = 5"></iframe> boots?'
CUSTOMER_XSS = '<img src=x onerror="window.__xss = 6"> how do I return boots?'
# Anything that would run or load if the text were parsed as HTML.
ACTIVE = "img, script, iframe, svg[onload], [onerror], [onload], a[href^='javascript']"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    retriever = FakeRetriever(
        answers=[
            source("evil#1", HOSTILE_QUESTION, HOSTILE_ANSWER, 0.95),
            source("ship#1", "When will my order arrive?", "In 3-5 business days.", 0.3),
        ]
    )
    settings = load_settings(home=tmp_path / "home", web=UNLIMITED)
    generator = FakeGenerator(pieces=split_words(HOSTILE_REPLY))

    def make_app() -> web.Application:
        return create_app(settings, retriever=retriever, generator=generator)

    with ServerThread(make_app) as running:
        add_operator(tmp_path / "home" / "supportbot.db")
        yield running


def test_markup_in_replies_sources_and_messages_is_text_in_the_widget_and_dashboard(
    server: ServerThread,
    browser_context: Any,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    page = browser_context.new_page()
    page.goto(server.origin + "/")
    page.get_by_role("button", name=re.compile("^Open chat")).click()
    dialog = page.get_by_role("dialog")
    box = dialog.get_by_role("textbox", name="Your message")
    box.fill(CUSTOMER_XSS)
    box.press("Enter")
    expect(dialog.locator(".sb-msg-customer .sb-text").last).to_have_text(CUSTOMER_XSS)
    expect(dialog.locator(".sb-msg-bot .sb-text").last).to_have_text(HOSTILE_REPLY)
    dialog.get_by_text("Sources (2)").click()  # the two answers the reply was written from
    # The source shows the start of the answer as text (a past customer's question never).
    expect(dialog.locator(".sb-sources li").first).to_contain_text("Returns are easy <img src=x")
    expect(dialog.get_by_text(HOSTILE_QUESTION)).to_have_count(0)
    widget_active = dialog.locator(ACTIVE).count()
    widget_xss = page.evaluate("window.__xss")
    assert widget_active == 0
    assert widget_xss is None

    # The customer says the reply was not helpful: it goes to the operators' queue.
    dialog.get_by_role("button", name="Not helpful", exact=True).click()
    database = tmp_path / "home" / "supportbot.db"
    with sqlite3.connect(database) as conn:
        (conversation,) = conn.execute("SELECT id FROM bot_conversations").fetchone()

    ops = browser_context.new_page()
    ops.goto(server.origin + f"/ops/conversations/{conversation}")
    ops.get_by_label("Name").fill("alice")
    ops.get_by_label("Password").fill(PASSWORD)
    ops.get_by_role("button", name="Log in").click()
    main = ops.locator("main")
    expect(main.get_by_text(HOSTILE_REPLY).first).to_be_visible()
    main.get_by_text("Sources (").first.click()
    expect(main.get_by_text(HOSTILE_ANSWER).first).to_be_visible()  # its source
    expect(main.get_by_text(CUSTOMER_XSS).first).to_be_visible()
    ops.goto(server.origin + "/ops/")
    expect(ops.locator("main").get_by_text(CUSTOMER_XSS).first).to_be_visible()
    dashboard_active = ops.locator(f"main :is({ACTIVE})").count()
    dashboard_xss = ops.evaluate("window.__xss")
    record(
        "xss",
        payloads=7,
        widget_active_elements=widget_active,
        dashboard_active_elements=dashboard_active,
        executed=int(widget_xss is not None) + int(dashboard_xss is not None),
    )
    assert dashboard_active == 0
    assert dashboard_xss is None
