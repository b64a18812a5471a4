"""The chat widget clicked through in headless Chromium against a real server on loopback.

The app runs in a thread with its own event loop; the browser is Debian's /usr/bin/chromium
driven by Playwright (no browser download). A second loopback origin embeds the widget to
show that it works from another site.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import web

from bot.app import create_app
from bot.core.types import GenerationRequest
from bot.settings import load_settings
from bot.web import ENGINE, WebConfig
from tests.support.browser import CHROMIUM, ServerThread
from tests.support.fakes import FakeRetriever, source, split_words
from tests.support.web import RETURNS_ANSWER, SHIPPING_ANSWER, make_settings

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium"),
]


class SlowGenerator:
    """Streams the reply word by word with a pause, so the page can watch it grow."""

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        for piece in split_words(RETURNS_ANSWER):
            await asyncio.sleep(0.04)
            yield piece


def host_page(bot_origin: Callable[[], str]) -> web.Application:
    """Another company's page that embeds the widget with one script tag."""
    template = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Trail Shoes shop</title>
<style>body { font: 16px Georgia, serif; color: #400; } button { color: red; }</style>
</head><body>
<h1>Trail Shoes</h1><p>Our shop, with the support widget of another server.</p>
<script src="BOT/widget.js" data-title="Trail Shoes help" data-color="#f59e0b"
        data-sources="off" defer></script>
</body></html>"""

    async def page(request: web.Request) -> web.Response:
        html = template.replace("BOT", bot_origin())
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    return app


@dataclass
class Servers:
    bot: ServerThread
    shop: ServerThread
    database: Path


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    bot_origin: dict[str, str] = {}
    # The shop page starts first so that the bot can allow its origin.
    with ServerThread(lambda: host_page(lambda: bot_origin["url"])) as shop:
        home = tmp_path / "home"
        config = WebConfig(allowed_origins=(shop.origin,), rate_per_minute=600, rate_burst=100)
        retriever = FakeRetriever(
            answers=[
                source("c-ret#1", "How do I return boots that don't fit?", RETURNS_ANSWER, 0.93),
                source("c-ship#1", "When will my order arrive?", SHIPPING_ANSWER, 0.31),
            ]
        )

        def make_bot() -> web.Application:
            return create_app(
                make_settings(home, config), retriever=retriever, generator=SlowGenerator()
            )

        with ServerThread(make_bot) as bot:
            bot_origin["url"] = bot.origin
            yield Servers(bot, shop, home / "supportbot.db")


def query(database: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as conn:
        return conn.execute(sql, args).fetchall()


def wait_for_rows(database: Path, sql: str, *args: Any, timeout: float = 10) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        rows = query(database, sql, *args)
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


# Snapshots of the newest bot reply's text, and every link it has shown at any moment,
# taken by a MutationObserver in the page.
WATCH_STREAM = """() => {
  const root = document.querySelector('[data-supportbot]').shadowRoot;
  window.__snapshots = [];
  window.__hrefs = [];
  new MutationObserver(() => {
    const texts = root.querySelectorAll('.sb-msg-bot .sb-text');
    const last = texts[texts.length - 1];
    if (last && last.textContent && window.__snapshots.at(-1) !== last.textContent) {
      window.__snapshots.push(last.textContent);
    }
    for (const link of last ? last.querySelectorAll('a') : []) {
      if (!window.__hrefs.includes(link.href)) window.__hrefs.push(link.href);
    }
  }).observe(root, {subtree: true, childList: true, characterData: true});
}"""

ACTIVE_CLASS = (
    "() => document.querySelector('[data-supportbot]').shadowRoot.activeElement?.className"
)


def test_chat_on_the_demo_page_streams_rates_and_survives_a_reload(
    servers: Servers, browser_context: Any
) -> None:
    from playwright.sync_api import expect

    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(servers.bot.origin + "/")

    launcher = page.get_by_role("button", name=re.compile("^Open chat"))
    expect(launcher).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "false")

    # Keyboard only: open with Enter, focus lands in the message box, Enter sends.
    launcher.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Juniper Outfitters support")
    expect(dialog).to_be_visible()
    assert page.evaluate(ACTIVE_CLASS) == "sb-input"
    page.keyboard.press("Tab")
    assert page.evaluate(ACTIVE_CLASS) == "sb-send"
    page.keyboard.press("Tab")
    assert page.evaluate(ACTIVE_CLASS) == "sb-human"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(ACTIVE_CLASS) == "sb-input"
    page.evaluate(WATCH_STREAM)
    page.keyboard.type("How can I return boots that are too small?")
    page.keyboard.press("Enter")

    replies = dialog.locator(".sb-msg-bot .sb-text")
    expect(replies.last).to_have_text(RETURNS_ANSWER)
    snapshots: list[str] = page.evaluate("window.__snapshots")
    assert len(snapshots) >= 3, snapshots  # it grew piece by piece
    assert all(RETURNS_ANSWER.startswith(s) for s in snapshots)
    assert snapshots[-1] == RETURNS_ANSWER
    # The address is a link once it is whole, and only then.
    assert page.evaluate("window.__hrefs") == ["https://shop.example.com/returns"]
    expect(replies.last.get_by_role("link")).to_have_attribute(
        "href", "https://shop.example.com/returns"
    )
    expect(dialog.locator(".sb-msg-bot .sb-certainty")).to_have_text(
        "Confident: our team has answered this before"
    )

    sources = dialog.get_by_text("Sources (2)")
    sources.click()
    # The second source has no link: the start of the business's answer stands for it.
    expect(dialog.locator(".sb-sources li")).to_have_text(
        ["shop.example.com › returns", SHIPPING_ANSWER]
    )
    link = dialog.get_by_role("link", name="shop.example.com › returns")
    expect(link).to_have_attribute("href", "https://shop.example.com/returns")
    expect(link).to_have_attribute("title", "https://shop.example.com/returns")
    expect(link).to_have_attribute("rel", "noopener noreferrer")

    helpful = dialog.get_by_role("button", name="Helpful", exact=True)
    helpful.click()
    expect(helpful).to_have_attribute("aria-pressed", "true")
    rows = wait_for_rows(
        servers.database,
        "SELECT r.value, t.text FROM bot_ratings r JOIN bot_turns t ON t.id = r.turn_id",
    )
    assert rows == [("up", RETURNS_ANSWER)]

    # Text that looks like HTML stays text.
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert page.evaluate(ACTIVE_CLASS) == "sb-launcher"
    launcher.click()
    box = dialog.get_by_role("textbox", name="Your message")
    box.fill('<img src=x onerror="window.__xss = 1"> <b>bold?</b>')
    box.press("Enter")
    expect(dialog.locator(".sb-msg-customer .sb-text").last).to_have_text(
        '<img src=x onerror="window.__xss = 1"> <b>bold?</b>'
    )
    expect(replies).to_have_count(2)
    expect(replies.last).to_have_text(RETURNS_ANSWER)
    assert page.evaluate("window.__xss") is None
    assert dialog.locator("img, b").count() == 0
    page.screenshot(path="/tmp/widget.png")

    # A reload restores the open chat, the transcript and the rating.
    page.reload()
    dialog = page.get_by_role("dialog", name="Juniper Outfitters support")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".sb-msg-customer .sb-text")).to_have_text(
        [
            "How can I return boots that are too small?",
            '<img src=x onerror="window.__xss = 1"> <b>bold?</b>',
        ]
    )
    expect(dialog.locator(".sb-msg-bot .sb-text")).to_have_text([RETURNS_ANSWER, RETURNS_ANSWER])
    expect(dialog.get_by_role("button", name="Helpful", exact=True).first).to_have_attribute(
        "aria-pressed", "true"
    )
    assert errors == []


def test_the_widget_works_embedded_in_another_origin(
    servers: Servers, browser_context: Any
) -> None:
    from playwright.sync_api import expect

    page = browser_context.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(servers.shop.origin + "/")
    assert servers.shop.origin != servers.bot.origin

    page.get_by_role("button", name="Open chat: Trail Shoes help").click()
    dialog = page.get_by_role("dialog", name="Trail Shoes help")
    box = dialog.get_by_role("textbox", name="Your message")
    box.fill("Can I send back boots?")
    dialog.get_by_role("button", name="Send message").click()
    reply = dialog.locator(".sb-msg-bot .sb-text").last
    expect(reply).to_have_text(RETURNS_ANSWER)
    expect(dialog.get_by_text(re.compile(r"^Sources"))).to_have_count(0)  # data-sources="off"
    # The host page's styles do not reach into the widget.
    assert reply.evaluate("e => getComputedStyle(e).fontFamily") != "Georgia"

    not_helpful = dialog.get_by_role("button", name="Not helpful")
    not_helpful.click()
    expect(not_helpful).to_have_attribute("aria-pressed", "true")
    feedback = dialog.get_by_role("textbox", name=re.compile("What was wrong"))
    feedback.fill("I wanted to exchange, not return")
    feedback.press("Enter")
    rows = wait_for_rows(
        servers.database,
        "SELECT value, comment FROM bot_ratings WHERE comment IS NOT NULL",
    )
    assert rows == [("down", "I wanted to exchange, not return")]

    dialog.get_by_role("button", name="Talk to a human").click()
    expect(dialog.get_by_role("button", name="A person will reply here")).to_be_visible()
    # The hand-off notice answers nothing, so it claims no certainty.
    bot_messages = dialog.locator(".sb-msg-bot")
    expect(bot_messages).to_have_count(2)
    expect(bot_messages.first.locator(".sb-certainty")).to_have_count(1)
    expect(bot_messages.last.locator(".sb-certainty")).to_have_count(0)
    states = wait_for_rows(
        servers.database, "SELECT state FROM bot_conversations WHERE state = 'human'"
    )
    assert states == [("human",)]

    # While a person has the conversation, a message is kept for them.
    box.fill("Thanks, I'll wait")
    box.press("Enter")
    expect(dialog.locator(".sb-msg-note")).to_contain_text("will answer here")

    # An operator answers (from Slack or the dashboard); the widget shows it.
    ((conversation_id,),) = query(servers.database, "SELECT id FROM bot_conversations")
    sam = "Hi, Sam here. Pick the new size at https://shop.example.com/exchanges, I'll do the rest."
    servers.bot.call(lambda app: cast(Any, app[ENGINE]).add_agent_turn(conversation_id, sam))
    page.reload()  # opening the chat checks for operator replies at once
    dialog = page.get_by_role("dialog", name="Trail Shoes help")
    agent = dialog.locator(".sb-msg-agent")
    expect(agent).to_contain_text("Support team")
    expect(agent.locator(".sb-text")).to_have_text(sam)
    # An operator's address is a link too, without the comma after it.
    expect(agent.get_by_role("link")).to_have_attribute(
        "href", "https://shop.example.com/exchanges"
    )
    assert failed == []


def test_the_header_says_a_person_will_reply_until_the_conversation_is_handed_back(
    servers: Servers, browser_context: Any
) -> None:
    """After a hand-off the header still said "We usually answer right away". While a person
    has the conversation it says one will reply; the widget's poll for operator replies
    learns that an operator handed it back, and the header says the usual again."""
    from playwright.sync_api import expect

    page = browser_context.new_page()
    page.clock.install()  # the poll's ten seconds, fast-forwarded below
    page.goto(servers.bot.origin + "/")
    page.get_by_role("button", name=re.compile("^Open chat")).click()
    dialog = page.get_by_role("dialog", name="Juniper Outfitters support")
    header = dialog.locator(".sb-subtitle")
    expect(header).to_have_text("We usually answer right away")

    dialog.get_by_role("button", name="Talk to a human").click()
    expect(dialog.get_by_role("button", name="A person will reply here")).to_be_visible()
    expect(header).to_have_text("A person from our team will reply here")
    page.reload()  # the widget remembers who has the conversation
    expect(header).to_have_text("A person from our team will reply here")

    ((conversation_id,),) = query(servers.database, "SELECT id FROM bot_conversations")
    sam = "Hi, Sam here. The bot can take it from here."
    servers.bot.call(lambda app: cast(Any, app[ENGINE]).add_agent_turn(conversation_id, sam))
    servers.bot.call(lambda app: cast(Any, app[ENGINE]).hand_back(conversation_id))
    page.clock.fast_forward(11_000)  # past the next poll
    expect(dialog.locator(".sb-msg-agent .sb-text")).to_have_text(sam)
    expect(header).to_have_text("We usually answer right away")
    expect(dialog.get_by_role("button", name="Talk to a human")).to_be_visible()

    # The bot answers again.
    box = dialog.get_by_role("textbox", name="Your message")
    box.fill("How do I return boots that don't fit?")
    box.press("Enter")
    expect(dialog.locator(".sb-msg-bot .sb-text").last).to_have_text(RETURNS_ANSWER)
    expect(dialog.locator(".sb-msg-note")).to_have_count(0)


def test_the_widget_explains_when_the_server_cannot_answer(
    servers: Servers, browser_context: Any
) -> None:
    from playwright.sync_api import expect

    page = browser_context.new_page()
    page.goto(servers.bot.origin + "/")
    page.get_by_role("button", name=re.compile("^Open chat")).click()
    dialog = page.get_by_role("dialog")
    box = dialog.get_by_role("textbox", name="Your message")
    status = dialog.get_by_role("status")

    page.route(
        "**/api/conversations/*/messages",
        lambda route: route.fulfill(
            status=429,
            headers={"Retry-After": "7", "Content-Type": "application/json"},
            body='{"error": "rate_limited", "message": "Too many requests."}',
        ),
    )
    box.fill("Where is my parcel?")
    box.press("Enter")
    expect(status).to_contain_text("wait 7 seconds")
    expect(box).to_have_value("Where is my parcel?")  # nothing typed is lost
    expect(dialog.locator(".sb-msg-customer")).to_have_count(0)

    page.unroute("**/api/conversations/*/messages")
    page.route("**/api/**", lambda route: route.abort("connectionrefused"))
    box.press("Enter")
    expect(status).to_contain_text("can't reach support")
    expect(box).to_have_value("Where is my parcel?")

    page.unroute("**/api/**")
    box.press("Enter")
    expect(dialog.locator(".sb-msg-bot .sb-text").last).to_have_text(RETURNS_ANSWER)
    expect(status).to_have_text("")


def sse(*events: tuple[str, dict[str, Any]]) -> str:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


def test_the_widget_applies_every_kind_of_event(servers: Servers, browser_context: Any) -> None:
    """delta, retract, done and error, as the API documents them, split at odd places."""
    from playwright.sync_api import expect

    final = {
        "reply": "Refunds take 5-7 business days.",
        "sources": [],
        "confidence": 0.4,
        "handoff": False,
        "turn_id": "t-final",
        "certainty": "low",
    }
    streams = [
        sse(
            ("delta", {"text": "Refunds are instant"}),
            ("retract", {"reason": "grounding_fallback"}),
            ("delta", {"text": "Refunds take "}),
            ("delta", {"text": "5-7 business days."}),
            ("done", final),
        ),
        sse(
            ("delta", {"text": "Let me check"}),
            ("error", {"error": "model_unavailable", "message": "The assistant stopped."}),
        ),
        sse(("delta", {"text": "Cut off mid"})),  # the connection ends without "done"
    ]
    page = browser_context.new_page()
    page.goto(servers.bot.origin + "/")

    def answer(route: Any) -> None:
        route.fulfill(
            status=200,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
            body=streams.pop(0),
        )

    page.route("**/api/conversations/*/messages", answer)
    page.get_by_role("button", name=re.compile("^Open chat")).click()
    dialog = page.get_by_role("dialog")
    box = dialog.get_by_role("textbox", name="Your message")
    replies = dialog.locator(".sb-msg-bot .sb-text")

    box.fill("When do I get my refund?")
    box.press("Enter")
    expect(replies.last).to_have_text("Refunds take 5-7 business days.")
    expect(dialog.get_by_role("button", name="Helpful", exact=True)).to_have_count(1)
    expect(dialog.locator(".sb-certainty")).to_have_text("Not completely sure: a person can check")

    box.fill("And for a gift card?")
    box.press("Enter")
    expect(replies.last).to_have_text("The assistant stopped.")
    expect(dialog.locator(".sb-msg-error")).to_have_count(1)

    box.fill("Hello?")
    box.press("Enter")
    expect(replies.last).to_contain_text("interrupted")
    expect(dialog.get_by_role("button", name="Helpful", exact=True)).to_have_count(1)


LATE_PAGE = "https://help.juniperoutfitters.example/shipping/late-or-lost-packages"
TRACK_PAGE = "https://help.juniperoutfitters.example/orders/track-your-order?ref=chat"
LATE_ANSWER = (
    "Parcels usually arrive within 3-5 business days. If yours is late, see "
    f"{LATE_PAGE} or follow it at {TRACK_PAGE} (KB-SHP-02)."
)

# Where each rendered line of the newest reply breaks: the characters either side.
LINE_BREAKS = """() => {
  const root = document.querySelector('[data-supportbot]').shadowRoot;
  const texts = root.querySelectorAll('.sb-msg-bot .sb-text');
  const element = texts[texts.length - 1];
  const chars = [];
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.data.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const rect = range.getClientRects()[0];
      if (rect) chars.push([node.data[i], rect.top]);
    }
  }
  const breaks = [];
  for (let i = 1; i < chars.length; i++) {
    if (chars[i][1] > chars[i - 1][1] + 2) breaks.push([chars[i - 1][0], chars[i][0]]);
  }
  return breaks;
}"""


@pytest.fixture
def copying_bot(tmp_path: Path) -> Iterator[ServerThread]:
    """A bot with no generator: every answer is a past reply, copied."""
    config = WebConfig(rate_per_minute=600, rate_burst=100)
    retriever = FakeRetriever(
        answers=[
            source("c-late#1", "My parcel hasn't come, what now?", LATE_ANSWER, 0.94),
            source("c-ship#1", "When will my order arrive?", SHIPPING_ANSWER, 0.35),
        ]
    )
    settings = make_settings(tmp_path / "home", config)
    with ServerThread(lambda: create_app(settings, retriever=retriever, generator=None)) as bot:
        yield bot


def test_a_copied_reply_streams_and_lists_each_source_link_readably(
    copying_bot: ServerThread, browser_context: Any
) -> None:
    from playwright.sync_api import expect

    page = browser_context.new_page()
    page.set_viewport_size({"width": 400, "height": 700})  # a phone: the panel is narrow
    page.goto(copying_bot.origin + "/")
    page.get_by_role("button", name=re.compile("^Open chat")).click()
    dialog = page.get_by_role("dialog")
    page.evaluate(WATCH_STREAM)
    box = dialog.get_by_role("textbox", name="Your message")
    box.fill("My parcel is late, where is it?")
    box.press("Enter")

    reply = dialog.locator(".sb-msg-bot .sb-text").last
    expect(reply).to_have_text(LATE_ANSWER)
    snapshots: list[str] = page.evaluate("window.__snapshots")
    assert len(snapshots) >= 3, snapshots  # it grew in steps, though the server had it whole
    assert all(LATE_ANSWER.startswith(s) for s in snapshots)
    expect(dialog.locator(".sb-certainty")).to_have_text(
        "Confident: our team has answered this before"
    )

    # Long addresses in the reply wrap where a reader expects, never mid-word.
    breaks = page.evaluate(LINE_BREAKS)
    assert breaks, "the reply fits one line: the test shows nothing"
    for before, after in breaks:
        assert before in " /-" or after in " .?#&=", breaks

    # One past answer with two links: two items, not one packed with both.
    dialog.get_by_text("Sources (2)").click()
    items = dialog.locator(".sb-sources li")
    expect(items).to_have_text(
        [
            "help.juniperoutfitters.example › late-or-lost-packages",
            "help.juniperoutfitters.example › track-your-order",
        ]
    )
    for index, url in enumerate([LATE_PAGE, TRACK_PAGE]):
        link = items.nth(index).get_by_role("link")
        expect(link).to_have_count(1)  # one link per item
        expect(link).to_have_attribute("href", url)
        expect(link).to_have_attribute("title", url)
    # Every item stays inside the panel, cut with an ellipsis rather than overflowing it.
    overflowing = dialog.locator(".sb-sources li").evaluate_all(
        "items => items.filter(i => i.scrollWidth > i.clientWidth + 1).length"
    )
    assert overflowing == 0


GIFT_ANSWER = "Gift cards never expire (KB-GFT-01)."


def test_a_copied_reply_lists_no_source_that_only_repeats_it(
    tmp_path: Path, browser_context: Any
) -> None:
    """A first `make run` showed "Sources (1)" under a copied reply, and opened it listed
    the reply's own text again: the past answer it copied, which has no link. A source is
    listed for what it adds (a link, or an answer the reply does not say)."""
    from playwright.sync_api import expect

    retriever = FakeRetriever(
        answers=[source("c-gift#1", "Do gift cards expire?", GIFT_ANSWER, 0.95)]
    )
    config = WebConfig(rate_per_minute=600, rate_burst=100)
    settings = make_settings(tmp_path / "home", config)
    with ServerThread(lambda: create_app(settings, retriever=retriever, generator=None)) as bot:
        page = browser_context.new_page()
        page.goto(bot.origin + "/")
        page.get_by_role("button", name=re.compile("^Open chat")).click()
        dialog = page.get_by_role("dialog")
        box = dialog.get_by_role("textbox", name="Your message")
        box.fill("Do gift cards expire?")
        box.press("Enter")
        reply = dialog.locator(".sb-msg-bot").last
        expect(reply.locator(".sb-text")).to_have_text(GIFT_ANSWER)
        expect(reply.get_by_role("button", name="Helpful", exact=True)).to_be_visible()
        expect(reply.locator(".sb-sources")).to_have_count(0)
        expect(dialog.get_by_text(GIFT_ANSWER)).to_have_count(1)


def test_a_customer_gets_through_when_too_many_conversations_are_starting(
    tmp_path: Path, browser_context: Any
) -> None:
    """A flood from other addresses has used up the conversations all clients may start
    (web.new_conversations_burst): the real server refuses the customer's first message
    with 429 and Retry-After, and the widget says so, waits and starts it, instead of
    sending the customer away with an error for what others did."""
    from urllib.request import Request, urlopen

    from playwright.sync_api import expect

    config = WebConfig(
        rate_per_minute=600,
        rate_burst=100,
        new_conversations_per_minute=30,  # one every 2 s for all clients together
        new_conversations_burst=1,
    )
    retriever = FakeRetriever(
        answers=[source("c-ret#1", "How do I return boots?", RETURNS_ANSWER, 0.93)]
    )

    def make_bot() -> web.Application:
        return create_app(make_settings(tmp_path / "home", config), retriever=retriever)

    with ServerThread(make_bot) as bot:
        page = browser_context.new_page()
        page.goto(bot.origin + "/")
        page.get_by_role("button", name=re.compile("^Open chat")).click()
        dialog = page.get_by_role("dialog")
        box = dialog.get_by_role("textbox", name="Your message")
        # The flood takes the only conversation that may start now.
        flood = Request(bot.origin + "/api/conversations", data=b"{}", method="POST")
        flood.add_header("Content-Type", "application/json")
        with urlopen(flood, timeout=5) as answer:
            assert answer.status == 201
        box.fill("How do I return boots?")
        box.press("Enter")
        expect(dialog.get_by_role("status")).to_contain_text("Connecting you in")
        expect(dialog.locator(".sb-msg-bot .sb-text").last).to_have_text(
            RETURNS_ANSWER, timeout=15_000
        )
        expect(dialog.get_by_role("status")).to_have_text("")
        expect(dialog.locator(".sb-msg-customer")).to_have_count(1)


HELP_PAGE = (
    "https://help.juniperoutfitters.example/articles/"
    "360001234-returning-boots-that-do-not-fit-and-printing-a-label"
)
LABEL_PAGE = "https://help.juniperoutfitters.example/labels"
HELP_ANSWER = (
    "Send them back within 30 days, unworn. Our help center has a step-by-step guide: "
    f"{HELP_PAGE}. Print a free label ({LABEL_PAGE}) and drop the parcel at any post office."
)
NEW_TAB = {"target": "_blank", "rel": "noopener noreferrer nofollow"}
ACTIVE_TAG = "() => document.querySelector('[data-supportbot]').shadowRoot.activeElement?.tagName"


def test_addresses_in_a_copied_reply_are_links_a_keyboard_reaches(
    tmp_path: Path, browser_context: Any
) -> None:
    """A first `make run` showed the help-centre address at the end of a reply as plain text
    that wrapped mid-hostname. It is a link now, without the full stop after it, and the
    one in parentheses without the bracket; the customer's own address stays text."""
    from playwright.sync_api import expect

    retriever = FakeRetriever(
        answers=[source("c-ret#1", "How do I return boots?", HELP_ANSWER, 0.95)]
    )
    settings = make_settings(tmp_path / "home", WebConfig(rate_per_minute=600, rate_burst=100))
    with ServerThread(lambda: create_app(settings, retriever=retriever, generator=None)) as bot:
        page = browser_context.new_page()
        page.set_viewport_size({"width": 400, "height": 700})
        page.goto(bot.origin + "/")
        page.get_by_role("button", name=re.compile("^Open chat")).click()
        dialog = page.get_by_role("dialog")
        box = dialog.get_by_role("textbox", name="Your message")
        box.fill("How do I return boots? I found https://shop.example.com/returns.")
        box.press("Enter")

        reply = dialog.locator(".sb-msg-bot .sb-text").last
        expect(reply).to_have_text(HELP_ANSWER)
        links = reply.get_by_role("link")
        expect(links).to_have_text([HELP_PAGE, LABEL_PAGE])
        for index, url in enumerate([HELP_PAGE, LABEL_PAGE]):
            expect(links.nth(index)).to_have_attribute("href", url)
            for name, value in NEW_TAB.items():
                expect(links.nth(index)).to_have_attribute(name, value)
        expect(dialog.locator(".sb-msg-customer").get_by_role("link")).to_have_count(0)
        # The link wraps at its seams and stays inside the bubble.
        breaks = page.evaluate(LINE_BREAKS)
        assert breaks, "the reply fits one line: the test shows nothing"
        for before, after in breaks:
            assert before in " /-" or after in " .?#&=", breaks
        assert reply.evaluate("e => e.scrollWidth <= e.clientWidth + 1")

        # From the conversation, Tab reaches the links in order.
        dialog.locator(".sb-log").focus()
        page.keyboard.press("Tab")
        assert page.evaluate(ACTIVE_TAG) == "A"
        assert page.evaluate(ACTIVE_TAG.replace("tagName", "href")) == HELP_PAGE
        page.keyboard.press("Tab")
        assert page.evaluate(ACTIVE_TAG.replace("tagName", "href")) == LABEL_PAGE

        # A reload rebuilds the reply from the stored text, links included.
        page.reload()
        reply = page.get_by_role("dialog").locator(".sb-msg-bot .sb-text").last
        expect(reply.get_by_role("link")).to_have_text([HELP_PAGE, LABEL_PAGE])


TRICKY_REPLY = (
    "Only javascript:window.__xss=1 and data:text/html,hi and ftp://files.example/a stay text, "
    '<img src=x onerror="window.__xss = 2"> too; '
    "this is a link (https://shop.example.com/returns)! So is "
    "https://shop.example.com/wiki/Boot_(footwear), brackets of its own kept. And "
    "<a href=https://evil.example/x>this</a> is text around one: https://evil.example/x"
)


def model_pieces(text: str) -> list[str]:
    """``text`` cut as any SSE client may get it: word by word, a long word (an address)
    in pieces of at most 10 characters, so the page sees " (https://" before the rest.
    (This server's engine sends whole words; the API promises no such thing.)"""
    return [word[i : i + 10] for word in split_words(text) for i in range(0, len(word), 10)]


def slow_stream(pieces: list[str], final: dict[str, Any]) -> web.Application:
    """Answers any POST with ``pieces`` as SSE deltas 30 ms apart, then ``done``."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in pieces:
            await response.write(f"event: delta\ndata: {json.dumps({'text': piece})}\n\n".encode())
            await asyncio.sleep(0.03)
        await response.write(f"event: done\ndata: {json.dumps(final)}\n\n".encode())
        return response

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    return app


def test_only_web_addresses_in_a_reply_become_links_and_markup_stays_text(
    copying_bot: ServerThread, browser_context: Any
) -> None:
    """A reply streams text from a past answer or a model, which may carry any scheme and
    any markup (a poisoned log): only http(s) addresses become links, built as elements,
    nothing is parsed as HTML, and an address cut short mid-stream is never a link."""
    from playwright.sync_api import expect

    final = {"reply": TRICKY_REPLY, "sources": [], "handoff": False, "turn_id": "t-1"}
    pieces = model_pieces(TRICKY_REPLY)
    with ServerThread(lambda: slow_stream(pieces, final)) as stream:
        page = browser_context.new_page()
        page.goto(copying_bot.origin + "/")
        # The reply comes from the slow stream, as the browser's own request's answer.
        page.route(
            "**/api/conversations/*/messages",
            lambda route: route.continue_(url=stream.origin + "/stream"),
        )
        page.get_by_role("button", name=re.compile("^Open chat")).click()
        dialog = page.get_by_role("dialog")
        page.evaluate(WATCH_STREAM)
        box = dialog.get_by_role("textbox", name="Your message")
        box.fill("Anything odd?")
        box.press("Enter")

        reply = dialog.locator(".sb-msg-bot .sb-text").last
        expect(reply).to_have_text(TRICKY_REPLY)
    expect(dialog.get_by_role("button", name="Helpful", exact=True)).to_be_visible()
    # The address inside the markup is a link as well: an https one, built as an element.
    addresses = [
        "https://shop.example.com/returns",
        "https://shop.example.com/wiki/Boot_(footwear)",
        "https://evil.example/x",
        "https://evil.example/x",
    ]
    links = reply.locator("a")
    expect(links).to_have_text(addresses)
    hrefs = links.evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs == addresses
    assert reply.locator("img, b, [onerror], [href^='javascript'], [href^='data']").count() == 0
    assert page.evaluate("window.__xss") is None
    # Addresses were on screen cut short ("(https://" before "shop.examp...") but never
    # linked so: every link ever shown went to a whole address.
    snapshots: list[str] = page.evaluate("window.__snapshots")
    cut_short = [
        shown
        for shown in snapshots
        if len(shown) < len(TRICKY_REPLY)
        and "https://" in shown.split()[-1]
        and not TRICKY_REPLY[len(shown)].isspace()
    ]
    assert cut_short, snapshots
    assert set(page.evaluate("window.__hrefs")) == set(addresses)


COUNTER_ANNOUNCER = ".sb-visually-hidden[aria-live='polite']"
# How the send button looks: its pointer and its background as #rrggbb.
SEND_LOOK = """button => {
  const style = getComputedStyle(button);
  const hex = style.backgroundColor.match(/\\d+/g).slice(0, 3)
    .map(n => Number(n).toString(16).padStart(2, '0')).join('');
  return {cursor: style.cursor, background: '#' + hex};
}"""


def test_a_message_near_the_servers_limit_is_counted_and_one_over_it_is_kept_whole(
    tmp_path: Path, browser_context: Any
) -> None:
    """The widget cut pasted text at 2,000 characters without a word (its own maxlength):
    a customer who pasted a long error log lost its end unknowingly. The limit is the
    server's setting (120 here), the counter shows from 80% of it, and text over it stays
    in the box, with the send refused and the reason said, until the customer shortens it."""
    from playwright.sync_api import expect

    limit = 120
    settings = load_settings(
        home=tmp_path / "home",
        web=WebConfig(rate_per_minute=600, rate_burst=100),
        engine={"max_message_chars": limit},
    )
    retriever = FakeRetriever(
        answers=[source("c-ret#1", "How do I return boots?", RETURNS_ANSWER, 0.93)]
    )
    with ServerThread(lambda: create_app(settings, retriever=retriever)) as bot:
        page = browser_context.new_page()
        page.goto(bot.origin + "/")
        page.get_by_role("button", name=re.compile("^Open chat")).click()
        dialog = page.get_by_role("dialog")
        box = dialog.get_by_role("textbox", name="Your message")
        counter = dialog.locator(".sb-counter")
        announcer = dialog.locator(COUNTER_ANNOUNCER)
        status = dialog.get_by_role("status")

        box.fill("x" * 95)  # under 80% of 120: nothing to count yet
        expect(counter).to_be_hidden()
        box.fill("x" * 96)
        expect(counter).to_be_visible()
        expect(counter).to_have_text("24 characters left")
        expect(announcer).to_have_text("24 characters left.")
        box.press("End")
        box.press_sequentially("xyz")
        expect(counter).to_have_text("21 characters left")
        # Said once on coming near the limit, not at every key.
        expect(announcer).to_have_text("24 characters left.")

        pasted = "Traceback (most recent call last):\n" + "  at checkout.pay()\n" * 8 + "END"
        box.fill("")
        box.focus()
        page.keyboard.insert_text(pasted)  # as a paste arrives
        expect(box).to_have_value(pasted)  # whole: nothing cut
        over = len(pasted) - limit
        expect(counter).to_have_text(
            f"{over} characters over the limit of {limit}. Please shorten your message to send it."
        )
        expect(box).to_have_attribute("aria-invalid", "true")
        expect(announcer).to_have_text(f"Your message is over the limit of {limit} characters.")

        # The send button is off, and says why through the counter, until it fits again.
        send = dialog.get_by_role("button", name="Send message")
        expect(send).to_have_attribute("aria-disabled", "true")
        expect(send).to_be_disabled()  # as assistive technology reads it
        expect(send).to_have_accessible_description(re.compile(f"^{over} characters over"))
        assert send.evaluate(SEND_LOOK) == {"cursor": "not-allowed", "background": "#e5e7eb"}

        box.press("Enter")
        send.click(force=True)  # clicked all the same: nothing is sent
        expect(box).to_have_value(pasted)
        expect(dialog.locator(".sb-msg-customer")).to_have_count(0)
        expect(announcer).to_have_text(f"Your message is over the limit of {limit} characters.")
        # One red line says it: the status line said the same again after a refused send.
        expect(status).to_have_text("")
        on_screen = dialog.locator(f":not({COUNTER_ANNOUNCER})").filter(visible=True)
        said = dialog.get_by_text(re.compile("over the limit|too long")).and_(on_screen)
        expect(said).to_have_count(1)

        box.fill("How do I return boots? " + "x" * 90)  # back under the limit, near it
        expect(box).not_to_have_attribute("aria-invalid", "true")
        expect(send).to_be_enabled()
        expect(send).to_have_accessible_description("")
        assert send.evaluate(SEND_LOOK) == {"cursor": "pointer", "background": "#0f766e"}
        expect(announcer).to_contain_text("Your message fits again")
        box.fill("How do I return boots?")
        expect(counter).to_be_hidden()
        box.press("Enter")
        expect(dialog.locator(".sb-msg-bot .sb-text").last).to_have_text(
            RETURNS_ANSWER, timeout=30_000
        )
        expect(counter).to_be_hidden()


def test_a_paste_longer_than_the_default_limit_is_not_cut(
    servers: Servers, browser_context: Any
) -> None:
    from playwright.sync_api import expect

    page = browser_context.new_page()
    page.goto(servers.bot.origin + "/")
    page.get_by_role("button", name=re.compile("^Open chat")).click()
    dialog = page.get_by_role("dialog")
    box = dialog.get_by_role("textbox", name="Your message")
    log_lines = "".join(
        f"2026-12-07 10:{i // 60:02}:{i % 60:02} ERROR payment refused\n" for i in range(60)
    )
    pasted = log_lines + "the last line, which used to be lost"
    assert len(pasted) > 2000
    box.focus()
    page.keyboard.insert_text(pasted)
    expect(box).to_have_value(pasted)
    expect(dialog.locator(".sb-counter")).to_contain_text(
        f"{len(pasted) - 2000} characters over the limit of 2000"
    )
