"""Abuse of the operators' dashboard (issue 18): login guessing from rotating addresses,
bad query parameters, CR/LF in ``next=``, and weak passwords."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.ops.login_log import LINES_PER_MINUTE, LoginLog
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


def login_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bot.ops.login_log"]


async def test_failed_and_refused_logins_are_logged_with_the_address(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.ops.login_log")
    desk = "203.0.113.7"
    attempts = [await login_from(site, desk, "guess guess guess", name="ALICE") for _ in range(8)]
    assert attempts == [401] * 5 + [429] * 3
    lines = login_lines(caplog)
    # Each failure has its line; the refusals one for the minute, not one each.
    assert lines[:5] == ["failed login for operator 'alice' from 203.0.113.7"] * 5
    assert lines[5:] == [
        "login refused by the attempt limits for operator 'alice' from 203.0.113.7 (retry in 12 s)"
    ]


async def test_a_name_that_is_no_operators_is_not_written_to_the_log(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """It may be a password typed into the wrong box, or text made to forge log lines."""
    caplog.set_level(logging.INFO, logger="bot.ops.login_log")
    forged = "x\n2026-12-07 INFO bot.ops.auth operator mallory logged in"
    for name in ("hunter2-is-my-password", forged, "\u202etxt.exe"):
        assert await login_from(site, "198.51.100.4", "guess guess guess", name=name) == 401
    assert login_lines(caplog) == [
        "failed login for a name that is no operator's (22 characters) from 198.51.100.4",
        f"failed login for a name that is no operator's ({len(forged)} characters) "
        "from 198.51.100.4",
        "failed login for a name that is no operator's (8 characters) from 198.51.100.4",
    ]


async def test_a_login_flood_from_rotating_addresses_writes_a_bounded_log(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.ops")
    started = time.monotonic()
    statuses = [
        await login_from(site, f"198.51.{n // 250}.{n % 250}", "guess guess guess")
        for n in range(300)
    ]
    assert statuses.count(401) == 5 and statuses.count(429) == 295
    lines = [r for r in caplog.records if r.name.startswith("bot.ops")]
    # Not 300: the lines of a minute, and those the minute's budget regained meanwhile.
    regained = math.ceil((time.monotonic() - started) * LINES_PER_MINUTE / 60)
    assert LINES_PER_MINUTE <= len(lines) <= LINES_PER_MINUTE + regained
    assert all(r.getMessage().count("\n") == 0 and len(r.getMessage()) < 200 for r in lines)
    written, flood_ended = len(lines), time.monotonic()
    # A script posting the form without fetching it is refused, and no more lines follow.
    for n in range(50):
        response = await site.client.post(
            "/ops/login",
            data={"name": "alice", "password": "guess guess guess"},
            headers={"X-Forwarded-For": f"192.0.2.{n}"},
            allow_redirects=False,
        )
        assert response.status == 403
    lines = [r for r in caplog.records if r.name.startswith("bot.ops")]
    # The flood used up the budget: only what time regained since, not a line a request.
    regained = math.ceil((time.monotonic() - flood_ended) * LINES_PER_MINUTE / 60)
    assert len(lines) - written <= 1 + regained


def test_the_log_says_how_many_login_lines_it_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    login_log = LoginLog(lines_per_minute=2, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="bot.ops.login_log")
    for n in range(5):
        if login_log.will_log_failure():
            login_log.failed(f"198.51.100.{n}", "alice", "alice")
    for _ in range(3):  # one address refused again and again
        if login_log.will_log_refusal("198.51.100.9"):
            login_log.refused("198.51.100.9", "alice", "alice", 30.0)
    now[0] = 61.0
    if login_log.will_log_refusal("198.51.100.9"):
        login_log.refused("198.51.100.9", "bob", None, 30.0)
    login_log.stale_form("not an address\x1b[31m")
    assert login_lines(caplog) == [
        "failed login for operator 'alice' from 198.51.100.0",
        "failed login for operator 'alice' from 198.51.100.1",
        "login refused by the attempt limits for a name that is no operator's (3 characters)"
        " from 198.51.100.9 (retry in 30 s); 6 more login lines left out before this one",
        "refused a login form from another site or an expired page from 'not an address\\x1b[31m'",
    ]


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
