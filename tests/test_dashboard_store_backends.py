"""The dashboard's operators, sessions and review log, the same in the home's SQLite file
and in a real PostgreSQL server (replicas on several hosts); and its pages' reads, which
hold up no customer in either."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.ops.database import DashboardDatabase
from bot.ops.queries import channels
from bot.ops.storage import DashboardStore, OperatorExists, ReviewAction, UnknownOperator
from bot.store.conversations import ConversationDatabase
from retrieval.database import sqlite_url
from tests.support.dashboard import PASSWORD


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(1000.0)


@pytest.fixture(params=["sqlite", "postgresql"])
def accounts(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> Iterator[DashboardStore]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    store = DashboardStore.open(tmp_path / "supportbot.db", postgres_url=url, clock=clock)
    yield store
    store.close()


def test_operators_are_unique_whatever_the_case(accounts: DashboardStore) -> None:
    ana = accounts.add_operator("ana", PASSWORD)
    accounts.add_operator("Bo", PASSWORD)
    accounts.add_operator("carl", PASSWORD)
    with pytest.raises(OperatorExists):
        accounts.add_operator("ANA", PASSWORD)
    assert [o.name for o in accounts.operators()] == ["ana", "Bo", "carl"]
    assert accounts.authenticate(" Ana ", PASSWORD) == ana
    assert accounts.authenticate("ana", "wrong password!") is None
    assert accounts.authenticate("nobody", PASSWORD) is None
    assert accounts.operators()[0].last_login_at == 1000.0


def test_sessions_expire_and_end_with_their_operator(
    accounts: DashboardStore, clock: Clock
) -> None:
    ana = accounts.add_operator("ana", PASSWORD)
    token, session = accounts.start_session(ana, 60)
    assert accounts.session(token) == session and accounts.session(token + "x") is None
    clock.now += 61
    assert accounts.session(token) is None
    again, _ = accounts.start_session(ana, 60)
    accounts.end_session(again)
    assert accounts.session(again) is None
    kept, _ = accounts.start_session(ana, 60)
    accounts.remove_operator("ANA")
    assert accounts.session(kept) is None
    with pytest.raises(UnknownOperator):
        accounts.remove_operator("ana")


def test_the_review_log_keeps_each_conversations_actions_in_order(
    accounts: DashboardStore, clock: Clock
) -> None:
    first = accounts.log_action("ana", ReviewAction.APPROVE, "c1", "t1")
    clock.now += 1
    accounts.log_action("bo", ReviewAction.REPLY, "c2", None, "on it")
    second = accounts.log_action("bo", ReviewAction.CORRECT, "c1", "t2", "correction:7")
    assert second.id > first.id
    assert accounts.actions_for("c1") == [first, second]
    assert accounts.actions_for("c3") == []


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return sqlite_url(tmp_path / "supportbot.db")


async def test_a_page_being_read_makes_no_customer_wait(database: str) -> None:
    """A customer's message is stored while a dashboard page is half-way through its reads
    (SQLite: a WAL reader takes no lock; the house's writes begin IMMEDIATE)."""
    store, dashboard = ConversationDatabase(database), DashboardDatabase(database)
    await store.open()
    await dashboard.open()
    loop = asyncio.get_running_loop()
    try:
        await store.create_conversation("web")

        def page(conn: sa.Connection) -> list[str]:
            shown = channels(conn)  # its transaction has begun
            customer = asyncio.run_coroutine_threadsafe(store.create_conversation("slack"), loop)
            customer.result(timeout=5)
            return shown

        assert await dashboard.read(page) == ["web"]
        assert await dashboard.read(channels) == ["slack", "web"]
    finally:
        await dashboard.aclose()
        await store.aclose()
