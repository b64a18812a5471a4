"""Abuse of the operators' dashboard (issue 18): login guessing from rotating addresses,
bad query parameters, CR/LF in ``next=``, and weak passwords."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.ops.passwords import WeakPassword, check_password_policy
from bot.ops.storage import DashboardStore
from bot.store.conversations import ConversationDatabase
from bot.web import WebConfig
from tests.support.dashboard import (
    KNOWLEDGE,
    PASSWORD,
    Client,
    Site,
    add_operator,
    csrf_of,
    logged_in,
)
from tests.support.fakes import FakeRetriever
from tests.support.web import make_settings


@pytest.fixture
async def site(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Site]:
    """The dashboard behind a trusted proxy, so that tests can send from many addresses."""
    database = tmp_path / "conversations.db"
    store = ConversationDatabase(database)
    await store.open()
    add_operator(database)
    config = WebConfig(trusted_proxy_header="X-Forwarded-For")
    app = create_app(
        make_settings(tmp_path / "home", config),
        retriever=FakeRetriever.from_pairs(KNOWLEDGE),
        store=store,
    )
    client: Client = await aiohttp_client(app)
    yield Site(client, app, database)
    await client.close()
    await store.aclose()


async def login_from(site: Site, address: str, password: str, name: str = "alice") -> int:
    headers = {"X-Forwarded-For": address}
    form = await site.client.get("/ops/login", headers=headers)
    response = await site.client.post(
        "/ops/login",
        data={"name": name, "password": password, "csrf_token": csrf_of(await form.text())},
        headers=headers | {"Origin": site.origin},
        allow_redirects=False,
    )
    site.client.session.cookie_jar.clear_domain("127.0.0.1")  # each attempt a fresh browser
    return response.status


async def test_guesses_from_rotating_addresses_do_not_lock_out_the_operator(site: Site) -> None:
    desk = "203.0.113.7"
    assert await login_from(site, desk, PASSWORD) == 303  # the operator's usual address

    # A guesser: one wrong password from each of 20 addresses.
    guesses = [await login_from(site, f"198.51.100.{n}", "guess guess guess") for n in range(20)]
    assert guesses[:5] == [401] * 5
    assert set(guesses[5:]) == {429}  # the name is protected against new addresses

    # The operator at their desk is not held back: 4 of 4 correct logins get in.
    assert [await login_from(site, desk, PASSWORD) for _ in range(4)] == [303] * 4


async def test_one_address_guessing_one_name_is_limited(site: Site) -> None:
    desk = "203.0.113.7"
    assert await login_from(site, desk, PASSWORD) == 303
    # Even from a known address, guesses are limited per (address, name).
    attempts = [await login_from(site, desk, "guess guess guess") for _ in range(6)]
    assert attempts[-1] == 429


@pytest.mark.parametrize(
    "query",
    [
        "page=99999999999999999999",
        "page=0",
        "page=1000001",
        "page=" + "9" * 5000,
        "to=9999-12-31",
        "from=2025-13-01",
        "to=not-a-day",
    ],
)
async def test_bad_queue_parameters_answer_400(site: Site, query: str) -> None:
    await logged_in(site)
    response = await site.client.get(f"/ops/?{query}")
    assert response.status == 400
    assert "Something went wrong" not in await response.text()


async def test_the_queue_still_pages_normally(site: Site) -> None:
    await logged_in(site)
    for query in ("page=1", "page=3", "from=2025-01-01&to=2025-12-31", "to=9999-12-30"):
        assert (await site.client.get(f"/ops/?{query}")).status == 200, query


@pytest.mark.parametrize(
    "target",
    [
        "/ops/%0d%0aSet-Cookie:%20evil=1",
        "/ops/metrics%0aX-Injected:%201",
        "/ops/%0d",
        "/ops/%7f",
    ],
)
async def test_cr_lf_in_next_gets_a_proper_answer(site: Site, target: str) -> None:
    form = await site.client.get(f"/ops/login?next={target}")
    assert form.status == 200
    page = await form.text()
    assert 'name="next" value="/ops/"' in page
    await logged_in(site)
    response = await site.client.get(f"/ops/login?next={target}", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/ops/"
    assert "evil" not in response.cookies


@pytest.mark.parametrize(
    "password, why",
    [
        ("aaaaaaaaaa", "Repeats"),
        ("password123", "common password"),
        ("qwertyuiop", "common password"),
        ("zxcvbnm,./", "rows of keys"),
        ("alice1234567", "similar to a commonly used"),
    ],
)
def test_an_obviously_weak_password_is_refused_with_the_reason(password: str, why: str) -> None:
    with pytest.raises(WeakPassword) as refused:
        check_password_policy(password, user_inputs=("alice",))
    assert "too weak" in str(refused.value)
    assert why.lower() in str(refused.value).lower()


@pytest.mark.parametrize(
    "password", [PASSWORD, "plum-ferry-44-quartz", "Tr0ub4dor&3-staple-violet"]
)
def test_a_strong_password_is_accepted(password: str) -> None:
    check_password_policy(password, user_inputs=("alice",))


def test_adding_an_operator_with_a_weak_password_creates_no_account(tmp_path: Path) -> None:
    accounts = DashboardStore.open(tmp_path / "ops.db")
    try:
        with pytest.raises(WeakPassword):
            accounts.add_operator("sam", "sam12345678")
        assert accounts.authenticate("sam", "sam12345678") is None
        assert accounts.add_operator("sam", "plum-ferry-44-quartz").name == "sam"
    finally:
        accounts.close()
