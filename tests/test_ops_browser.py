"""The review dashboard clicked through in headless Chromium against a real server.

Two weeks of conversations are stored first (with the store's clock moved back a day at a
time) so that the queue, the conversation view and the charts show what an operator sees
on a working install; today's flagged replies come through the real engine. Screenshots
go to /tmp/ops-*.png.
"""

from __future__ import annotations

import random
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import web

from bot.app import create_app
from bot.core.config import EngineConfig
from bot.core.engine import ConversationEngine
from bot.core.types import FlagReason, FlagStatus, IncomingMessage, Outcome, Rating, Source
from bot.settings import load_settings
from bot.store.conversations import ConversationDatabase
from bot.web import ENGINE, WebConfig
from finetune import tables as finetune_tables
from retrieval import tables as knowledge_tables
from retrieval.database import sqlite_url, upgrade_database
from tests.support.browser import CHROMIUM, ServerThread
from tests.support.dashboard import KNOWLEDGE, PASSWORD, SHIPPING, add_operator
from tests.support.fakes import FakeRetriever
from tests.support.store_reads import list_flags, resolve_flag
from tests.support.web import make_settings

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium"),
]

DAY = 86_400.0
XSS = '<img src=x onerror="window.__xss = 1"> is this <b>safe</b>?'
UNKNOWN = [
    "Can I pay with a cheque?",
    "Do you sponsor climbing clubs?",
    "Is the Cascade tent good for snow?",
]
BETTER = "Orders ship within 24 hours; standard delivery then takes 3-5 business days."


class SeedClock:
    """The real time, or a time the seeding sets to store past days."""

    def __init__(self) -> None:
        self.fixed: float | None = None

    def __call__(self) -> float:
        return time.time() if self.fixed is None else self.fixed


@dataclass
class Dashboard:
    server: ServerThread
    store: ConversationDatabase
    database: Path
    clock: SeedClock


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Dashboard]:
    home = tmp_path / "home"
    database = home / "supportbot.db"
    clock = SeedClock()
    store = ConversationDatabase(database, clock=clock)
    retriever = FakeRetriever.from_pairs(KNOWLEDGE)
    config = WebConfig(rate_per_minute=100_000, rate_burst=100_000)

    def make_app() -> web.Application:
        return create_app(make_settings(home, config), retriever=retriever, store=store)

    with ServerThread(make_app) as server:
        add_operator(database)
        yield Dashboard(server, store, database, clock)
        server.call(lambda app: store.aclose())  # on the loop its connections belong to


def seed_history(site: Dashboard, days: int = 14) -> None:
    """Past days of replies, ratings and reviewed flags, stored as the engine stores them."""
    rng = random.Random(7)
    now = time.time()
    midnight = now - now % DAY  # UTC

    async def one_day(app: web.Application, day: int) -> None:
        store = site.store
        for n in range(rng.randint(9, 18)):
            site.clock.fixed = midnight - day * DAY + 7 * 3600 + n * 900
            conversation = await store.create_conversation(rng.choice(["web", "web", "slack"]))
            known = rng.random() > 0.18
            question, answer = rng.choice(KNOWLEDGE) if known else (rng.choice(UNKNOWN), "")
            await store.add_turn(conversation.id, "customer", question)
            if known:
                generated = rng.random() < 0.6
                source = Source("log-1", round(rng.uniform(0.55, 0.95), 3), "log", question, answer)
                turn = await store.add_turn(
                    conversation.id,
                    "bot",
                    answer,
                    outcome=Outcome.GENERATED if generated else Outcome.COPIED,
                    confidence=round(rng.uniform(0.4, 0.97), 3),
                    sources=(source,),
                    latency_ms=rng.uniform(500, 1900) if generated else rng.uniform(60, 220),
                    index_version="1",
                    model_version="adapter-0002" if generated else None,
                )
                if generated and rng.random() < 0.08:
                    await store.add_flag(turn.id, FlagReason.GROUNDING_FALLBACK, "unsupported: 48h")
                if rng.random() < 0.35:
                    value = "up" if rng.random() < 0.8 else "down"
                    await store.add_rating(Rating(turn.id, value))  # type: ignore[arg-type]
                    if value == "down":
                        await store.add_flag(turn.id, FlagReason.THUMBS_DOWN)
            else:
                turn = await store.add_turn(
                    conversation.id,
                    "bot",
                    "I've passed your question to a member of our team.",
                    outcome=Outcome.HANDOFF,
                    confidence=round(rng.uniform(0.01, 0.2), 3),
                    latency_ms=rng.uniform(40, 90),
                    index_version="1",
                )
                await store.add_flag(turn.id, FlagReason.LOW_CONFIDENCE, "confidence below 0.25")
        # Reviewed already, except the hand-offs and fallbacks of the last two days.
        for flag in await list_flags(store, FlagStatus.OPEN, limit=1000):
            recent = flag.created_at > now - 2.5 * DAY
            if not recent or flag.reason is FlagReason.THUMBS_DOWN:
                await resolve_flag(store, flag.id, FlagStatus.APPROVED, "sam")

    for day in range(days - 1, 0, -1):
        site.server.call(lambda app, day=day: one_day(app, day))
    site.clock.fixed = None

    for history in (finetune_tables.HISTORY, knowledge_tables.HISTORY):
        upgrade_database(sqlite_url(site.database), history)
    with sqlite3.connect(site.database) as conn:
        conn.execute(
            "INSERT INTO index_versions (folder, embedder_id, kind, entry_count, max_entry_id,"
            " created_at, is_live) VALUES ('indexes/v1', 'all-MiniLM-L6-v2', 'flat', 1843,"
            " 1843, ?, 1)",
            (now - 15 * DAY,),
        )
        conn.execute(
            "INSERT INTO finetune_base_models (folder, source, model_ref, metrics, created_at)"
            " VALUES ('models/base/gpt-0001', 'bootstrap', 'models/base/gpt-0001', '{}', ?)",
            (now - 15 * DAY,),
        )
        metrics = (
            '{"training": {"steps": 1260, "best_val_loss": 1.874}, "eval": ['
            '{"name": "adapter", "examples": 256, "rouge_l": 0.4381, "grounded_share": 0.9648,'
            ' "handoff_share": 0.0469},'
            '{"name": "base model", "examples": 256, "rouge_l": 0.2977, "grounded_share": 0.8711,'
            ' "handoff_share": 0.0},'
            '{"name": "copy top retrieved", "examples": 256, "rouge_l": 0.3902,'
            ' "grounded_share": 1.0, "handoff_share": 0.0}]}'
        )
        conn.execute(
            "INSERT INTO finetune_adapters (folder, base_id, metrics, created_at)"
            " VALUES ('models/adapters/adapter-0002', 1, ?, ?)",
            (metrics, now - 14 * DAY),
        )
        conn.execute("INSERT INTO finetune_live VALUES (1, 1, ?)", (now - 14 * DAY,))


def seed_today(site: Dashboard) -> str:
    """Today's flagged replies through the engine; the thumbs-down reply's turn id."""

    async def work(app: web.Application) -> str:
        engine = cast(ConversationEngine, app[ENGINE])
        web_chat = await engine.start_conversation("web")
        await engine.reply(IncomingMessage(web_chat.id, XSS))
        slack = await engine.start_conversation("slack", "C042/1718000000.1")
        answer = await engine.reply(IncomingMessage(slack.id, "how do I return boots?"))
        await engine.rate(Rating(answer.turn_id, "down", "wanted an exchange", "slack"))
        late = await engine.start_conversation("web")
        await engine.reply(IncomingMessage(late.id, "Hi, do gift cards expire?"))
        shipping = await engine.reply(IncomingMessage(late.id, "When will my order arrive?"))
        await engine.rate(Rating(shipping.turn_id, "down", "It's been two weeks already"))
        human = await engine.start_conversation("web")
        await engine.reply(IncomingMessage(human.id, "Do gift cards expire?"))
        await engine.request_handoff(human.id)
        return shipping.turn_id

    result: str = site.server.call(work)
    return result


def query(database: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as conn:
        return conn.execute(sql, args).fetchall()


def test_an_operator_reviews_the_queue_and_reads_the_metrics(
    dashboard: Dashboard, browser_context: Any
) -> None:
    from playwright.sync_api import expect

    seed_history(dashboard)
    turn_id = seed_today(dashboard)
    origin = dashboard.server.origin

    page = browser_context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    refused = "the server responded with a status of 401"  # the wrong password, below
    # A load the browser abandons because the page navigated on (net::ERR_ABORTED: a
    # click before a busy machine served the script) is not the server failing.
    page.on(
        "requestfailed",
        lambda request: (
            None
            if "ERR_ABORTED" in (request.failure or "")
            else problems.append(f"failed: {request.url} ({request.failure})")
        ),
    )

    # Anyone is sent to the login page; a wrong password is refused.
    page.goto(origin + "/ops/")
    expect(page).to_have_url(re.compile(r"/ops/login\?next="))
    expect(page.get_by_role("heading", name="Log in to review")).to_be_visible()
    page.get_by_label("Name").fill("alice")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong name or password.")
    expect(page.get_by_label("Name")).to_have_value("alice")
    expect(page.get_by_label("Password")).to_be_focused()
    page.screenshot(path="/tmp/ops-login.png")
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")

    # The queue: oldest first, customer text shown as text.
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    expect(page).to_have_url(origin + "/ops/")
    rows = page.locator("tbody tr")
    total = rows.count()
    assert total >= 5
    times = rows.locator("time").evaluate_all("els => els.map(e => e.getAttribute('datetime'))")
    assert times == sorted(times)
    expect(page.get_by_text(XSS)).to_be_visible()
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img, main b").count() == 0
    expect(page.get_by_role("link", name=re.compile("^Queue"))).to_have_attribute(
        "aria-current", "page"
    )
    page.screenshot(path="/tmp/ops-queue.png", full_page=True)

    # Everyone waiting for a person, whatever the reason the bot handed them off: one
    # unsure hand-off and one asked for. On the hand-off, nothing closes the wait but
    # resolving it (issue 19).
    page.get_by_label("Reason").select_option(label="Waiting for a person (any reason)")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"reason=waiting"))
    expect(rows).to_have_count(2)
    rows.first.get_by_role("link", name=re.compile("^Review")).click()
    expect(page.get_by_role("heading", name="Waiting for a person")).to_be_visible()
    expect(page.get_by_role("button", name="Resolve hand-off")).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_text("Teach the bot an answer for next time")).to_be_visible()
    page.get_by_role("link", name="← Back to the queue").click()
    page.get_by_role("link", name="Reset").click()

    # Filter by reason and channel, with the keyboard-usable form.
    page.get_by_label("Reason").select_option(label="Thumbs down")
    page.get_by_label("Channel").select_option("web")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"reason=thumbs_down"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("When will my order arrive?")
    expect(rows.first).to_contain_text("It's been two weeks already")
    page.get_by_label("Channel").select_option("slack")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_role("status")).to_contain_text("Nothing to review")
    page.get_by_label("Channel").select_option("web")
    page.get_by_role("button", name="Apply filters").click()

    # The conversation: the reply, its sources and the review actions.
    rows.first.get_by_role("link", name=re.compile("^Review")).click()
    expect(page.get_by_role("heading", name="Conversation", exact=True)).to_be_visible()
    turn = page.locator(f"#turn-{turn_id}")
    expect(turn).to_contain_text(SHIPPING)
    expect(turn.get_by_text("Needs review")).to_be_visible()
    turn.get_by_text("Sources (").click()
    expect(turn.get_by_text("log-2")).to_be_visible()
    page.screenshot(path="/tmp/ops-conversation.png", full_page=True)

    turn.get_by_text("Edit & approve").click()
    answer = turn.get_by_label("Corrected answer")
    expect(answer).to_be_focused()
    expect(answer).to_have_value(SHIPPING)
    answer.fill(BETTER)
    turn.get_by_role("button", name="Save correction & approve").click()
    expect(page.get_by_role("status")).to_have_text(
        "Correction saved. It is served to customers from now on."
    )
    # Saving leads to the questions the correction may answer too; back to the conversation.
    expect(page.get_by_role("heading", name="Questions it answers")).to_be_visible()
    page.get_by_role("link", name="← Back to the conversation").click()
    turn = page.locator(f"#turn-{turn_id}")
    expect(turn.get_by_text("Correction by alice")).to_be_visible()
    expect(turn.get_by_role("heading", name="Review this reply")).to_have_count(0)
    page.screenshot(path="/tmp/ops-corrected.png", full_page=True)
    assert query(
        dashboard.database,
        "SELECT answer, created_by FROM bot_corrections WHERE turn_id = ?",
        turn_id,
    ) == [(BETTER, "alice")]

    # Back in the (still filtered) queue the reply is gone.
    page.get_by_role("link", name="← Back to the queue").click()
    expect(page).to_have_url(re.compile(r"reason=thumbs_down"))
    expect(page.get_by_role("status")).to_contain_text("Nothing to review")
    page.get_by_role("link", name="Reset").click()
    expect(rows).to_have_count(total - 1)

    # The next customer gets the correction.
    async def ask_again(app: web.Application) -> str:
        engine = cast(ConversationEngine, app[ENGINE])
        chat = await engine.start_conversation("web")
        return (await engine.reply(IncomingMessage(chat.id, "When will my order arrive?"))).text

    assert dashboard.server.call(ask_again) == BETTER

    # The correction turns out wrong: withdrawn from the Curated answers page, it is no
    # longer what the next customer gets.
    page.get_by_role("link", name="Curated answers").click()
    expect(page.get_by_role("heading", name="Curated answers", exact=True)).to_be_visible()
    curated = page.locator("tr.curated-row")
    expect(curated).to_have_count(1)
    expect(curated).to_contain_text(BETTER)
    expect(curated.get_by_text("Served")).to_be_visible()
    # Withdrawing cannot be undone: confirmed on the answer's page, by a ticked box.
    curated.get_by_role("link", name=re.compile("^Withdraw")).click()
    withdraw = page.get_by_role("button", name="Withdraw curated answer")
    withdraw.click()  # the box is not ticked: the browser keeps the form, nothing is sent
    expect(page.get_by_role("heading", name="Withdraw", exact=True)).to_be_visible()
    assert dashboard.server.call(ask_again) == BETTER
    page.get_by_label("Yes, stop serving this answer for good").check()
    withdraw.click()
    expect(page.get_by_role("status").first).to_have_text(
        "Curated answer withdrawn. It is no longer served, nor learned from."
    )
    expect(curated.get_by_text("Withdrawn", exact=True)).to_be_visible()
    expect(curated).to_contain_text("by alice")
    expect(curated.get_by_role("button")).to_have_count(0)
    page.screenshot(path="/tmp/ops-curated.png", full_page=True)
    assert dashboard.server.call(ask_again) != BETTER
    assert query(dashboard.database, "SELECT operator, action FROM ops_actions")[-1] == (
        "alice",
        "withdraw_correction",
    )

    # Metrics: four charts, the model with its evaluation, the index.
    page.get_by_role("link", name="Metrics").click()
    expect(page.get_by_role("heading", name="Metrics", exact=True)).to_be_visible()
    expect(page.locator("svg.chart")).to_have_count(4)
    expect(page.get_by_role("img", name="Reply latency per day")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("adapter-0002"))).to_contain_text("Live")
    expect(page.get_by_role("cell", name="0.438")).to_be_visible()
    page.screenshot(path="/tmp/ops-metrics.png", full_page=True)
    page.get_by_role("link", name="7 days").click()
    expect(page).to_have_url(re.compile(r"days=7"))

    # Log out: the dashboard is closed again.
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_have_text("You are logged out.")
    page.goto(origin + "/ops/metrics")
    expect(page).to_have_url(re.compile(r"/ops/login\?next=%2Fops%2Fmetrics"))
    assert [p for p in problems if refused not in p] == []


def test_the_dashboard_fits_a_narrow_screen(dashboard: Dashboard, browser_context: Any) -> None:
    from playwright.sync_api import expect

    seed_today(dashboard)
    page = browser_context.new_page()
    page.set_viewport_size({"width": 420, "height": 860})
    page.goto(dashboard.server.origin + "/ops/login")
    page.get_by_label("Name").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    page.screenshot(path="/tmp/ops-mobile.png", full_page=True)
    # The page itself never scrolls sideways; only the table may, inside its frame.
    wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .filter(e => !e.parentElement.closest('.table-wrap'))
            .map(e => e.tagName + '.' + e.className)"""
    )
    assert wide == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


# -- one correction for a topic (issue 20), over the real knowledge base ---------------------

OLD_GIFT = "Gift cards never expire (KB-GFT-01)."
NEW_GIFT = "Gift cards expire after 5 years; the date is printed on the back (KB-GFT-02)."
GIFT_LOGS = [
    "Is there an expiry date on gift cards?",
    "How long is a gift card valid?",
    "Can my gift voucher run out?",
    "do gift certificates have an end date",
    "my gift card is old, can I still use it?",
    "is a gift card good forever",
]
SHIPPING_LOGS = [
    "How long does delivery take?",
    "when does my package arrive",
    "Do you deliver on Saturdays?",
]


@pytest.fixture
def topic_dashboard(tmp_path: Path, make_knowledge: Any) -> Iterator[Dashboard]:
    from concurrent.futures import ThreadPoolExecutor

    from bot.adapters.retrieval import KnowledgeRetriever
    from retrieval.ingest import ingest_paths
    from tests.support.corpus import SMALL_LOGS, exchange, write_jsonl

    home = tmp_path / "home"
    database = home / "supportbot.db"
    logs = [
        *SMALL_LOGS,
        *(exchange(f"g{n}", q, OLD_GIFT) for n, q in enumerate(GIFT_LOGS)),
        *(exchange(f"s{n}", q, SHIPPING) for n, q in enumerate(SHIPPING_LOGS)),
    ]
    kb = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", logs)], kb)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrieval")
    retriever = KnowledgeRetriever(kb, executor)
    store = ConversationDatabase(database, clock=(clock := SeedClock()))
    config = WebConfig(rate_per_minute=100_000, rate_burst=100_000)
    # Hand-off off, as in the benchmark: every customer gets the nearest logged answer, so
    # the customers a correction should cover are among those it can offer.
    settings = load_settings(home=home, web=config, engine=EngineConfig(confidence_threshold=0))

    def make_app() -> web.Application:
        return create_app(settings, retriever=retriever, store=store)

    try:
        with ServerThread(make_app) as server:
            add_operator(database)
            yield Dashboard(server, store, database, clock)
            server.call(lambda app: store.aclose())  # on the loop its connections belong to
    finally:
        executor.shutdown(wait=True)


def ask_api(origin: str, text: str) -> str:
    """A new customer's message through the public API; the bot's reply text."""
    import json
    import urllib.request

    def post(path: str, body: dict[str, str]) -> Any:
        request = urllib.request.Request(
            origin + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    conversation = post("/api/conversations", {})["conversation_id"]
    return str(post(f"/api/conversations/{conversation}/messages", {"text": text})["reply"])


def correct_in_dashboard(page: Any, origin: str, conversation_id: str, answer: str) -> None:
    """Log in as alice and correct the conversation's rated reply with ``answer``."""
    from playwright.sync_api import expect

    page.goto(origin + "/ops/login")
    page.get_by_label("Name").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{origin}/ops/conversations/{conversation_id}")
    page.get_by_text("Edit & approve").click()
    # Opening the form moves the cursor to the end of the old answer; filling before that
    # happened could type after the old answer instead of replacing it.
    expect(page.get_by_label("Corrected answer")).to_be_focused()
    page.get_by_label("Corrected answer").fill(answer)
    expect(page.get_by_label("Corrected answer")).to_have_value(answer)
    page.get_by_role("button", name="Save correction & approve").click()


def test_an_operator_corrects_one_reply_and_covers_the_questions_like_it(
    topic_dashboard: Dashboard, browser_context: Any
) -> None:
    from playwright.sync_api import expect

    origin = topic_dashboard.server.origin

    async def complaint(app: web.Application) -> str:
        engine = cast(ConversationEngine, app[ENGINE])
        chat = await engine.start_conversation("web")
        reply = await engine.reply(IncomingMessage(chat.id, "Do gift cards expire?"))
        await engine.rate(Rating(reply.turn_id, "down", "Mine expired last year!"))
        return chat.id

    conversation_id = topic_dashboard.server.call(complaint)
    # Another customer asked differently and got the same wrong answer.
    assert ask_api(origin, "until when is my gift card valid") == OLD_GIFT

    page = browser_context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    correct_in_dashboard(page, origin, conversation_id, NEW_GIFT)

    # The dashboard offers the customers' other wordings, logged and live, each unticked.
    expect(page.get_by_role("heading", name="Questions it answers")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text(
        "Correction saved. It is served to customers from now on."
    )
    offered = page.locator("li.suggestion")
    expect(offered.first).to_be_visible()
    # The correction alone does not reach this wording: the logs outvote it.
    assert ask_api(origin, "gift card validity period?") == OLD_GIFT
    for question in ("Is there an expiry date on gift cards?", "until when is my gift card valid"):
        expect(page.get_by_label(question, exact=True)).not_to_be_checked()
    expect(offered.filter(has_text="until when is my gift card valid")).to_contain_text(
        "Live conversation"
    )
    # The logs answered the whole topic with the old answer, so each wording lies as near
    # a logged question answered otherwise as to the corrected one: none is grouped as
    # likely, and no button selects them; the operator reads and ticks each.
    likely = page.get_by_role("group", name=re.compile("^Likely the same question"))
    expect(likely).to_have_count(0)
    expect(page.get_by_role("group", name=re.compile(r"^Less alike \(\d+\)"))).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Select"))).to_have_count(0)
    chosen = [*GIFT_LOGS[:4], "until when is my gift card valid"]
    for question in chosen:
        page.get_by_label(question, exact=True).check()
    page.screenshot(path="/tmp/ops-topic.png", full_page=True)
    page.get_by_role("button", name="Attach selected questions").click()

    expect(page.get_by_role("status")).to_have_text(
        "Questions attached. Customers who ask them get this answer from now on."
    )
    served = page.get_by_role("list", name="Questions served this answer")
    for question in chosen:
        expect(served).to_contain_text(question)
        expect(page.get_by_label(question, exact=True)).to_have_count(0)  # no longer offered

    # The next customer who asks in yet another way gets the corrected answer.
    assert ask_api(origin, "gift card validity period?") == NEW_GIFT
    assert ask_api(origin, "until when is my gift card valid") == NEW_GIFT
    assert problems == []


def test_one_click_attaches_only_the_likely_same_questions_not_a_nearby_topic(
    topic_dashboard: Dashboard, browser_context: Any
) -> None:
    """An outside tester's trap: "Select all" attached "Do you ship on weekends?" to a
    correction about shipping to Canada, and its next askers got the Canada answer."""
    from playwright.sync_api import expect

    origin = topic_dashboard.server.origin
    canada = ["Can you deliver to Canada?", "do you ship orders to canada", "Shipping to Canada?"]
    weekend = "Do you ship on weekends?"

    async def complaint(app: web.Application) -> str:
        engine = cast(ConversationEngine, app[ENGINE])
        chat = await engine.start_conversation("web")
        reply = await engine.reply(IncomingMessage(chat.id, "Do you ship to Canada?"))
        await engine.rate(Rating(reply.turn_id, "down", "That's not what I asked"))
        return chat.id

    conversation_id = topic_dashboard.server.call(complaint)
    for question in [*canada, weekend]:  # all got the shipping time
        assert ask_api(origin, question) == SHIPPING

    page = browser_context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    to_canada = "Yes, we ship to Canada: 7-10 business days, duties included (KB-SHP-CA)."
    correct_in_dashboard(page, origin, conversation_id, to_canada)

    likely = page.get_by_role("group", name=re.compile(r"^Likely the same question \(3\)"))
    others = page.get_by_role("group", name=re.compile(r"^Others, less alike"))
    for question in canada:
        expect(likely.get_by_label(question, exact=True)).not_to_be_checked()  # none preselected
    expect(others.get_by_label(weekend, exact=True)).not_to_be_checked()
    expect(page.get_by_role("button", name="Select all")).to_have_count(0)
    page.get_by_role("button", name="Select the 3 likely").click()
    for question in canada:
        expect(likely.get_by_label(question, exact=True)).to_be_checked()
    expect(others.get_by_label(weekend, exact=True)).not_to_be_checked()
    page.screenshot(path="/tmp/ops-topic-groups.png", full_page=True)
    page.get_by_role("button", name="Select none").click()
    expect(likely.get_by_label(canada[0], exact=True)).not_to_be_checked()
    page.get_by_role("button", name="Select the 3 likely").click()
    page.get_by_role("button", name="Attach selected questions").click()

    expect(page.get_by_role("status")).to_have_text(
        "Questions attached. Customers who ask them get this answer from now on."
    )
    served = page.get_by_role("list", name="Questions served this answer")
    for question in canada:
        expect(served).to_contain_text(question)
    expect(served).not_to_contain_text(weekend)
    # The next customers: the Canada askers get the correction, the weekend one does not.
    assert ask_api(origin, "do you ship orders to canada") == to_canada
    assert ask_api(origin, weekend) == SHIPPING
    assert problems == []
