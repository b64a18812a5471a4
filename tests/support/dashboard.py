"""The operators' dashboard under test: a site with a logged-in operator and its forms."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.core.engine import ConversationEngine
from bot.ops.storage import DashboardStore
from bot.store.conversations import ConversationDatabase
from bot.web import ENGINE, WebConfig
from tests.support.fakes import FakeRetriever
from tests.support.web import make_settings

if TYPE_CHECKING:
    from finetune.pipeline import GeneratorPaths

Client = TestClient[web.Request, web.Application]


PASSWORD = "correct horse battery staple"


# Monday 3 March 2025, 09:00 UTC: the queue's date filters count whole UTC days from here.
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC).timestamp()


RETURNS = "Unworn boots can be returned within 30 days (KB-RET-01)."


SHIPPING = "Standard shipping takes 3-5 business days (KB-SHP-01)."


KNOWLEDGE = [
    ("How do I return boots that don't fit?", RETURNS),
    ("When will my order arrive?", SHIPPING),
    ("Do gift cards expire?", "Gift cards never expire (KB-GFT-01)."),
]


class Clock:
    """A wall clock the test sets: the store stamps turns and flags with it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Site:
    """A running app as the dashboard's user sees it: a client and the database file."""

    client: Client
    app: web.Application
    database: Path

    @property
    def origin(self) -> str:
        return str(self.client.make_url("/")).rstrip("/")

    @property
    def engine(self) -> ConversationEngine:
        return cast(ConversationEngine, self.app[ENGINE])


@dataclass
class Ops(Site):
    store: ConversationDatabase
    retriever: FakeRetriever
    clock: Clock


def add_operator(
    database: Path,
    name: str = "alice",
    password: str = PASSWORD,
    *,
    postgres_url: str | None = None,
) -> None:
    """An operator account in the dashboard's tables: in ``database``, or in PostgreSQL."""
    accounts = DashboardStore.open(database, postgres_url=postgres_url)
    try:
        accounts.add_operator(name, password)
    finally:
        accounts.close()


@pytest.fixture
async def ops(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Ops]:
    clock = Clock(T0)
    database = tmp_path / "conversations.db"
    store = ConversationDatabase(database, clock=clock)
    await store.open()
    add_operator(database)
    retriever = FakeRetriever.from_pairs(KNOWLEDGE)
    config = WebConfig(rate_per_minute=100_000, rate_burst=100_000)
    app = create_app(make_settings(tmp_path / "home", config), retriever=retriever, store=store)
    client: Client = await aiohttp_client(app)
    yield Ops(client, app, database, store, retriever, clock)
    await client.close()
    await store.aclose()


# -- helpers ----------------------------------------------------------------------------------
def registry_paths(database: Path) -> GeneratorPaths:
    """Generator paths that keep the model registry and the cycle log in ``database``."""
    from finetune.pipeline import GeneratorPaths

    return replace(GeneratorPaths.under(database.parent), database=database)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def login(ops: Site, name: str = "alice", password: str = PASSWORD, **extra: str) -> Any:
    """Submit the login form as a browser does (its token, our Origin); the response."""
    form = await ops.client.get("/ops/login")
    assert form.status == 200
    data = {"name": name, "password": password, "csrf_token": csrf_of(await form.text())}
    return await ops.client.post(
        "/ops/login",
        data=data | extra,
        headers={"Origin": ops.origin},
        allow_redirects=False,
    )


async def logged_in(ops: Site) -> str:
    """Log in as alice; the session's CSRF token."""
    response = await login(ops)
    assert response.status == 303, await response.text()
    page = await ops.client.get("/ops/")
    assert page.status == 200
    return csrf_of(await page.text())


async def post(ops: Site, path: str, token: str | None, **data: str) -> Any:
    if token is not None:
        data["csrf_token"] = token
    return await ops.client.post(
        path, data=data, headers={"Origin": ops.origin}, allow_redirects=False
    )


async def page(ops: Site, path: str) -> str:
    response = await ops.client.get(path)
    assert response.status == 200, (path, response.status)
    return await response.text()


async def ask(
    ops: Site, text: str, conversation_id: str | None = None
) -> tuple[str, dict[str, Any]]:
    """A customer's message through the public API; (conversation id, reply JSON)."""
    if conversation_id is None:
        created = await ops.client.post("/api/conversations")
        conversation_id = (await created.json())["conversation_id"]
    response = await ops.client.post(
        f"/api/conversations/{conversation_id}/messages", json={"text": text}
    )
    assert response.status == 200, await response.text()
    assert conversation_id is not None
    return conversation_id, await response.json()


def queue_turns(text: str) -> list[str]:
    """The bot turn ids linked from the queue's rows, in page order."""
    return re.findall(r'href="/ops/conversations/[0-9a-f]+\?[^"#]*#turn-([0-9a-f]+)"', text)


def query(database: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as conn:
        return conn.execute(sql, args).fetchall()
