"""A full disk is a polite refusal, not a 500, and loses nothing (issue 7).

Each SQLite test runs on two kinds of full disk:

* ``tmpfs``: the home is on a small tmpfs mounted for the test, then filled with a file
  until the kernel answers ENOSPC: SQLite fails exactly as on a full production disk.
  Mounting needs root (CAP_SYS_ADMIN); elsewhere this kind is skipped.
* ``page_limit``: SQLite's ``max_page_count`` is set to the file's current size on the
  store's own connection, so that SQLite may not grow it by one page: the same SQLITE_FULL
  error, without privileges. It runs everywhere.

PostgreSQL (``postgres_tablespace``): the real test server keeps the conversation and
Slack tables in a tablespace on a small tmpfs, filled the same way, so that the server
itself answers SQLSTATE 53100 disk_full ("could not extend file ... No space left on
device"), while its catalogs and WAL stay on a disk with room, as when a data volume fills.

What an operator acting in the dashboard must see: a 503 page that says nothing was saved
and keeps what they typed; an action that was done but could not be written to the review
log says so.

What a customer must see: the web API answers 503 ``storage_unavailable`` with
``Retry-After``, the widget says so politely and keeps what was typed, Slack posts an
apology in the thread. What an operator must see: the cause logged once, with the file;
``/healthz`` and ``/metrics`` saying the store cannot write. Nothing stored before is lost,
and the bot answers again once there is room.
"""

from __future__ import annotations

import errno
import logging
import os
import pwd
import re
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web

from bot.app import STORE, create_app
from bot.core.errors import StorageUnavailable
from bot.ops.keys import DATABASE
from bot.ops.storage import ReviewAction
from bot.settings import load_settings
from bot.slack.state import SlackState, Thread
from bot.store.conversations import ConversationDatabase
from bot.web.errors import STORAGE_UNAVAILABLE_MESSAGE
from tests.support.browser import CHROMIUM
from tests.support.dashboard import Site, add_operator, logged_in, post
from tests.support.fakes import FakeRetriever, source
from tests.support.hardening import UNLIMITED, live_server, record
from tests.support.postgres_server import PostgresServer
from tests.support.slack import (
    SUPPORT,
    SlackHarness,
    Start,
    mention,
    message,
)

RETURNS = source(
    "c-ret#1",
    "How do I return boots that don't fit?",
    "Unworn items can be returned within 30 days, see KB-RET-01.",
    0.93,
)
BIG = "Where is my order? " + "x" * 1900  # about a page of SQLite per message
HEALTH_LOGGER = "bot.store.health"

Work = Callable[[sqlite3.Connection], object]
RunOn = Callable[[Work], Awaitable[object]]


def on_the_store(store: ConversationDatabase) -> RunOn:
    """Runs work on the conversation store's SQLite connection (its one, kept: a pragma
    set there holds for its writes), in a read's deferred transaction, in the thread that
    owns it."""

    async def run(work: Work) -> object:
        return await store.database.read(lambda conn: work(conn.connection.dbapi_connection))  # type: ignore[arg-type]

    return run


class FullDisk:
    """Makes the home's disk full and frees it again, for real or by SQLite's page limit."""

    def __init__(self, kind: str, home: Path) -> None:
        self.kind = kind
        self.home = home
        self._filler = home.parent / "filler.bin"

    async def fill(self, *connections: RunOn) -> None:
        """Leave no room; ``connections`` run work on the SQLite connections in use."""
        if self.kind == "tmpfs":
            _fill_with_a_file(self._filler)
            return

        def no_more_pages(conn: sqlite3.Connection) -> None:
            (pages,) = conn.execute("PRAGMA page_count").fetchone()
            conn.execute(f"PRAGMA max_page_count = {pages}")

        for run_on in connections:
            await run_on(no_more_pages)

    async def free(self, *connections: RunOn) -> None:
        if self.kind == "tmpfs":
            self._filler.unlink()
            return
        for run_on in connections:
            await run_on(lambda conn: conn.execute("PRAGMA max_page_count = 1073741823"))


def _fill_with_a_file(path: Path) -> None:
    chunk = b"\0" * (64 * 1024)
    with open(path, "wb", buffering=0) as fh:
        for size in (len(chunk), 4096, 1):  # big writes, then the last few bytes
            try:
                while True:
                    fh.write(chunk[:size])
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc


def _mount_small_tmpfs(mount_point: Path, options: str = "size=8m,mode=0700") -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the page_limit kind covers the rest")
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")


@pytest.fixture(params=["tmpfs", "page_limit"])
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FullDisk]:
    kind: str = request.param
    if kind == "tmpfs":
        mount_point = tmp_path / "disk"
        _mount_small_tmpfs(mount_point)
        try:
            yield FullDisk(kind, mount_point / "home")
        finally:
            # Lazy: a connection the app has not closed yet must not keep it mounted.
            subprocess.run(["umount", "-l", str(mount_point)], check=False)
    else:
        yield FullDisk(kind, tmp_path / "home")


def _read_only(database: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{database}?mode=ro", uri=True)


def _stored(database: Path) -> tuple[list[tuple[str, str]], list[str], str]:
    """Every turn (id, text), every rated turn id, and the integrity check's verdict."""
    with _read_only(database) as conn:
        turns = conn.execute("SELECT id, text FROM bot_turns ORDER BY rowid").fetchall()
        ratings = [r for (r,) in conn.execute("SELECT turn_id FROM bot_ratings")]
        (integrity,) = conn.execute("PRAGMA integrity_check").fetchone()
    return turns, ratings, integrity


def _health_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == HEALTH_LOGGER and r.levelno >= logging.ERROR]


async def test_a_full_disk_is_a_polite_503_and_loses_nothing(
    aiohttp_client: Any, disk: FullDisk, caplog: pytest.LogCaptureFixture
) -> None:
    database = disk.home / "supportbot.db"
    database.parent.mkdir(parents=True)
    store = ConversationDatabase(database)
    await store.open()
    app = create_app(
        load_settings(home=disk.home, web=UNLIMITED),
        retriever=FakeRetriever(answers=[RETURNS]),
        store=store,
    )
    client = await aiohttp_client(app)
    conversation = (await (await client.post("/api/conversations")).json())["conversation_id"]
    messages = f"/api/conversations/{conversation}/messages"
    first = await client.post(messages, json={"text": "How do I return boots?"})
    assert first.status == 200
    rated = await client.post(
        f"/api/turns/{(await first.json())['turn_id']}/rating", json={"rating": "up"}
    )
    assert rated.status == 200

    caplog.set_level(logging.WARNING)
    await disk.fill(on_the_store(store))
    statuses = []
    for _ in range(300):  # until the room left inside the files is used up
        response = await client.post(messages, json={"text": BIG})
        statuses.append(response.status)
        if response.status != 200:
            break
    before, rated_before, _ = _stored(database)
    refusal = await response.json()

    assert statuses[-1] == 503, statuses
    assert refusal == {"error": "storage_unavailable", "message": STORAGE_UNAVAILABLE_MESSAGE}
    assert response.headers["Retry-After"] == "60"
    # Refused the same way when streamed, and again and again.
    refused = [
        await client.post(messages, json={"text": BIG}, headers={"Accept": "text/event-stream"}),
        await client.post(messages, json={"text": BIG}),
        await client.post(messages, json={"text": BIG}),
    ]
    if disk.kind == "tmpfs":
        # On a real full disk even a tiny write needs room (the WAL grows). Under the page
        # limit a row that fits in a page with space left still succeeds, so only there.
        refused.append(await client.post("/api/conversations"))
    assert {r.status for r in refused} == {503}
    assert {(await r.json())["error"] for r in refused} == {"storage_unavailable"}

    # The operator learns it once, with the file, and from the health check and metrics.
    errors = _health_errors(caplog)
    assert len(errors) == 1 and str(database) in errors[0].getMessage(), errors
    assert not [r for r in caplog.records if "unhandled error" in r.getMessage()]
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "degraded"
    assert health["storage"]["writable"] is False and health["storage"]["reason"] == "disk_full"
    assert health["storage"]["refused_writes"] >= 4
    metrics = await (await client.get("/metrics")).text()
    assert "supportbot_storage_writable 0.0" in metrics

    # Nothing stored before is lost, and nothing was half-stored.
    turns, ratings, integrity = _stored(database)
    assert (turns, ratings, integrity) == (before, rated_before, "ok")
    assert turns[0][1] == "How do I return boots?" and len(ratings) == 1

    # Room again: the bot answers, the health check recovers, and says so in the log.
    await disk.free(on_the_store(store))
    store.health.settle_s = 0.0  # not wait for 30 s without a refused write
    again = await client.post(messages, json={"text": "How do I return boots?"})
    assert again.status == 200, await again.text()
    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
    assert "supportbot_storage_writable 1.0" in await (await client.get("/metrics")).text()
    assert any("writable again" in r.getMessage() for r in caplog.records)
    after, _, integrity = _stored(database)
    assert after[: len(before)] == before and len(after) == len(before) + 2 and integrity == "ok"
    record(
        "faults",
        kill="disk-full",
        disk=disk.kind,
        status=statuses[-1],
        code="storage_unavailable",
        retry_after=response.headers["Retry-After"],
        logged_errors=len(errors),
        turns=[len(before), len(turns)],
        ratings=[len(rated_before), len(ratings)],
    )
    await client.close()
    await store.aclose()


async def test_slack_apologises_when_the_disk_is_full(
    start: Start,
    disk: FullDisk,
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack: SlackHarness = await start(home=disk.home)
    thread = mention("How do I return boots that don't fit?")
    await slack.send(thread)
    await slack.final_reply(thread["ts"])
    store = slack.store
    assert isinstance(store, ConversationDatabase)

    caplog.set_level(logging.WARNING)
    await disk.fill(on_the_store(store))
    for n in range(300):  # until the room left inside the files is used up
        await slack.send(message(f"{BIG} {n}", thread_ts=thread["ts"]))
        await slack.idle()
        if not store.health.writable:
            break
    assert not store.health.writable
    turns_when_full = await store.list_turns(await slack.conversation_of(SUPPORT, thread["ts"]))

    # A follow-up in the thread, and a brand-new thread: both get the apology, not silence.
    # Both as long as the message just refused: under the page limit a shorter one could
    # still fit in a page with room left (on a real full disk nothing fits).
    refused_text = f"{BIG} {n}"
    since = len(slack.api.calls)
    await slack.send(message(refused_text, thread_ts=thread["ts"]))
    fresh = mention(refused_text)
    await slack.send(fresh)
    await slack.idle()
    for thread_ts in (thread["ts"], fresh["ts"]):
        said = _said_in(slack, thread_ts, since)
        assert any(APOLOGY in text for text in said), (thread_ts, said)
    # Logged once per store that found out (the Slack state shares the file on a real
    # disk), with the file, and no traceback for each refused message.
    errors = _health_errors(caplog)
    assert [
        str(sa.make_url(store.url).database) in r.getMessage()
        for r in errors
        if "conversation store" in r.getMessage()
    ] == [True]
    assert len(errors) <= 2
    assert not [r for r in caplog.records if r.exc_info is not None]

    await disk.free(on_the_store(store))
    store.health.settle_s = 0.0  # not wait for 30 s without a refused write
    conversation = await slack.conversation_of(SUPPORT, thread["ts"])
    assert (await store.list_turns(conversation))[: len(turns_when_full)] == turns_when_full
    after = mention("How do I return boots that don't fit?")
    await slack.send(after)
    final = await slack.final_reply(after["ts"])
    assert "KB-RET-01" in final["text"] and store.health.writable


@dataclass
class PostgresOnFullDisk:
    """A database whose tables live in a tablespace on a small tmpfs (see the docstring)."""

    url: str
    admin_url: str
    database: str
    filler: Path

    async def move_tables_to_the_small_disk(self, tablespace: str) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            for kind in ("TABLE", "INDEX"):
                await conn.execute(
                    f"ALTER {kind} ALL IN TABLESPACE pg_default SET TABLESPACE {tablespace}"
                )
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_tablespace t"
                " ON t.oid = c.reltablespace WHERE t.spcname = %s",
                (tablespace,),
            )
            moved = await cursor.fetchone()
        assert moved is not None and moved[0] >= 6, moved  # the store's tables and indexes

    def fill(self) -> None:
        _fill_with_a_file(self.filler)

    def free(self) -> None:
        self.filler.unlink()

    def stored(self) -> tuple[list[tuple[str, str]], list[str]]:
        """Every turn (id, text) in order, and every rated turn id."""
        import psycopg

        with psycopg.connect(self.url) as conn:
            turns = conn.execute("SELECT id, text FROM bot_turns ORDER BY created_at, id")
            ratings = conn.execute("SELECT turn_id FROM bot_ratings")
            return [(i, t) for i, t in turns.fetchall()], [r for (r,) in ratings.fetchall()]


@pytest.fixture
async def postgres_on_a_small_disk(
    postgres_server: PostgresServer,
) -> AsyncIterator[tuple[PostgresOnFullDisk, str]]:
    """(the database, the tablespace on an 8 MB tmpfs for its tables); as root only."""
    import psycopg

    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    # Inside the server's own folder: the postgres user can reach it (a pytest tmp_path
    # is root's, mode 0700), and the tmpfs belongs to that user, as CREATE TABLESPACE needs.
    mount_point = postgres_server.socket_dir / f"disk-{uuid.uuid4().hex[:8]}"
    ids = f"uid={owner.pw_uid},gid={owner.pw_gid}" if owner else ""
    _mount_small_tmpfs(mount_point, f"size=8m,mode=0700,{ids}")
    assert owner is not None
    tablespace = f"small_{uuid.uuid4().hex[:8]}"
    location = mount_point / "tablespace"
    location.mkdir()
    os.chown(location, owner.pw_uid, owner.pw_gid)
    url = postgres_server.create_database()
    database = url.rsplit("/", 1)[-1]
    admin = postgres_server.url()
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE TABLESPACE {tablespace} LOCATION '{location}'")
        yield PostgresOnFullDisk(url, admin, database, mount_point / "filler.bin"), tablespace
    finally:
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                conn.execute(f"DROP TABLESPACE IF EXISTS {tablespace}")
        finally:
            subprocess.run(["umount", "-l", str(mount_point)], check=False)


async def test_postgres_full_disk_is_the_same_polite_503_and_loses_nothing(
    aiohttp_client: Any,
    tmp_path: Path,
    postgres_on_a_small_disk: tuple[PostgresOnFullDisk, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    db, tablespace = postgres_on_a_small_disk
    store = ConversationDatabase(db.url)
    slack_state = SlackState(db.url)
    await store.open()
    await slack_state.open()
    await db.move_tables_to_the_small_disk(tablespace)
    app = create_app(
        load_settings(home=tmp_path / "home", web=UNLIMITED),
        retriever=FakeRetriever(answers=[RETURNS]),
        store=store,
    )
    client = await aiohttp_client(app)
    conversation = (await (await client.post("/api/conversations")).json())["conversation_id"]
    messages = f"/api/conversations/{conversation}/messages"
    first = await client.post(messages, json={"text": "How do I return boots?"})
    assert first.status == 200
    turn_id = (await first.json())["turn_id"]
    assert (await client.post(f"/api/turns/{turn_id}/rating", json={"rating": "up"})).status == 200

    caplog.set_level(logging.WARNING)
    db.fill()
    statuses = []
    for _ in range(300):  # until the room left in the tables' pages is used up
        response = await client.post(messages, json={"text": BIG})
        statuses.append(response.status)
        if response.status != 200:
            break
    before, rated_before = db.stored()
    assert statuses[-1] == 503, statuses
    assert (await response.json()) == {
        "error": "storage_unavailable",
        "message": STORAGE_UNAVAILABLE_MESSAGE,
    }
    assert response.headers["Retry-After"] == "60"
    refused = [
        await client.post(messages, json={"text": BIG}, headers={"Accept": "text/event-stream"}),
        await client.post(messages, json={"text": BIG}),
    ]
    assert {r.status for r in refused} == {503}
    assert {(await r.json())["error"] for r in refused} == {"storage_unavailable"}
    # The server itself said disk_full: the cause logged once names the database and it.
    errors = _health_errors(caplog)
    assert len(errors) == 1, errors
    assert db.database in errors[0].getMessage() and "DiskFull" in errors[0].getMessage()
    assert "No space left on device" in errors[0].getMessage()
    assert not [r for r in caplog.records if "unhandled error" in r.getMessage()]
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "degraded" and health["storage"]["reason"] == "disk_full"
    assert "supportbot_storage_writable 0.0" in await (await client.get("/metrics")).text()
    # The Slack state on the same database refuses the same way (its table has no page yet).
    thread = Thread("C1", "1700000000.000100")
    with pytest.raises(StorageUnavailable):
        await slack_state.remember_thread(thread, conversation, "U1")
    assert not slack_state.health.writable

    # Nothing stored before is lost, and nothing of a refused message was half-stored.
    when_full, rated_when_full = db.stored()
    assert (when_full, rated_when_full) == (before, rated_before)
    assert before[0][1] == "How do I return boots?" and rated_before == [turn_id]

    db.free()
    store.health.settle_s = 0.0  # not wait for 30 s without a refused write
    again = await client.post(messages, json={"text": "How do I return boots?"})
    assert again.status == 200, await again.text()
    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
    assert any("writable again" in r.getMessage() for r in caplog.records)
    await slack_state.remember_thread(thread, conversation, "U1")
    assert (await slack_state.known_thread(thread)) is not None
    after, _ = db.stored()
    assert after[: len(before)] == before and len(after) == len(before) + 2
    record(
        "faults",
        kill="disk-full",
        disk="postgres_tablespace",
        status=statuses[-1],
        code="storage_unavailable",
        retry_after=response.headers["Retry-After"],
        logged_errors=len(errors),
        turns=[len(before), len(when_full)],
        ratings=[len(rated_before), len(rated_when_full)],
    )
    await client.close()
    await slack_state.aclose()
    await store.aclose()


APOLOGY = "we can't save new messages right now"


def _said_in(slack: SlackHarness, thread_ts: str, since: int) -> list[str]:
    """What the bot posted in a thread (or updated a message of it to) after call ``since``."""
    posted = {
        c.get("_ts") for c in slack.api.of("chat.postMessage") if c.get("thread_ts") == thread_ts
    }
    return [
        str(c.get("text", "")).lower()
        for c in slack.api.calls[since:]
        if (c.method == "chat.postMessage" and c.get("thread_ts") == thread_ts)
        or (c.method == "chat.update" and c.get("ts") in posted)
    ]


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium")
def test_the_widget_says_so_and_keeps_what_was_typed(
    disk: FullDisk,
    browser_context: Any,
) -> None:
    from playwright.sync_api import expect

    database = disk.home / "supportbot.db"
    with live_server(disk.home, FakeRetriever(answers=[RETURNS])) as server:
        page = browser_context.new_page()
        page.goto(server.origin + "/")
        page.get_by_role("button", name=re.compile("^Open chat")).click()
        dialog = page.get_by_role("dialog")
        box = dialog.get_by_role("textbox", name="Your message")
        status = dialog.get_by_role("status")
        box.fill("How do I return boots?")
        box.press("Enter")
        expect(dialog.locator(".sb-msg-bot .sb-text").last).to_have_text(RETURNS.agent_reply)

        server.call(lambda app: disk.fill(on_the_store(app[STORE])))
        typed = ""
        send = dialog.get_by_role("button", name="Send message")
        for n in range(300):  # until the room left inside the files is used up
            typed = f"{BIG} {n}"
            box.fill(typed)
            box.press("Enter")
            # The widget is busy from the key press until the server answered: typing the
            # next message before that raced the widget putting a refused one back.
            expect(send).to_have_attribute("aria-disabled", "false")
            expect(dialog.locator(".sb-msg-pending")).to_have_count(0)
            if "can't save new messages" in (status.text_content() or ""):
                break
        expect(status).to_contain_text("can't save new messages right now")
        expect(box).to_have_value(typed)  # nothing typed is lost, it can be sent again
        expect(dialog.locator(".sb-msg-customer .sb-text").last).not_to_have_text(typed)
        turns, _, integrity = _stored(database)
        assert turns[0][1] == "How do I return boots?" and integrity == "ok"

        server.call(lambda app: disk.free(on_the_store(app[STORE])))
        box.press("Enter")
        expect(dialog.locator(".sb-msg-bot .sb-text").last).to_have_text(RETURNS.agent_reply)
        expect(status).to_have_text("")


# -- the dashboard ------------------------------------------------------------------------------
def _dashboard(app: web.Application) -> web.Application:
    (found,) = [
        r.get_info()["app"]
        for r in app.router.resources()
        if isinstance(r, web.PrefixedSubAppResource)
    ]
    return found  # type: ignore[no-any-return]


class Flagged:
    """A site with a logged-in operator and two replies waiting for review."""

    def __init__(self, site: Site, store: ConversationDatabase, token: str) -> None:
        self.site, self.store, self.token = site, store, token

    async def conversation(self) -> str:
        created = await self.site.client.post("/api/conversations")
        return str((await created.json())["conversation_id"])

    async def ask(self, text: str, conversation_id: str) -> Any:
        return await self.site.client.post(
            f"/api/conversations/{conversation_id}/messages", json={"text": text}
        )

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with _read_only(self.site.database) as conn:
            return conn.execute(sql).fetchall()

    def state(self) -> dict[str, list[tuple[Any, ...]]]:
        """Everything an operator's action could change."""
        return {
            "flags": self.rows("SELECT id, status, resolved_by FROM bot_flags ORDER BY id"),
            "corrections": self.rows("SELECT id, answer FROM bot_corrections ORDER BY id"),
            "turns": self.rows("SELECT id, text FROM bot_turns ORDER BY rowid"),
            "states": self.rows("SELECT id, state FROM bot_conversations ORDER BY id"),
            "log": self.rows("SELECT id, action FROM ops_actions ORDER BY id"),
        }


async def _flagged_site(aiohttp_client: Any, home: Path) -> tuple[Flagged, str, str, str]:
    """(the site, a thumbs-down turn, a hand-off turn, the hand-off's conversation)."""
    database = home / "supportbot.db"
    database.parent.mkdir(parents=True)
    store = ConversationDatabase(database)
    await store.open()
    add_operator(database)
    app = create_app(
        load_settings(home=home, web=UNLIMITED),
        retriever=FakeRetriever(answers=[RETURNS]),
        store=store,
    )
    site = Site(await aiohttp_client(app), app, database)
    flagged = Flagged(site, store, await logged_in(site))
    answered = await (
        await flagged.ask("How do I return boots?", await flagged.conversation())
    ).json()
    rated = await site.client.post(
        f"/api/turns/{answered['turn_id']}/rating", json={"rating": "down"}
    )
    assert rated.status in (200, 204)
    handoff_cid = await flagged.conversation()
    assert (await flagged.ask("How do I return boots?", handoff_cid)).status == 200
    requested = await site.client.post(f"/api/conversations/{handoff_cid}/handoff")
    assert requested.status in (200, 201)
    ((handoff_turn,),) = flagged.rows("SELECT turn_id FROM bot_flags WHERE reason = 'handoff'")
    assert len(flagged.rows("SELECT id FROM bot_flags WHERE status = 'open'")) == 2
    return flagged, answered["turn_id"], handoff_turn, handoff_cid


def on_its_connection(store: Any, work: Work) -> object:
    """``work`` on the SQLite connection of the dashboard's store: the one its engine holds,
    as the store is used from one worker thread, so a pragma set here stays for its writes."""
    with store.engine.connect() as conn:
        return work(conn.connection.dbapi_connection)


TYPED_ANSWER = "Unworn boots can be returned within 30 days (KB-RET-01). " + "y" * 1850
TYPED_REPLY = "Hi, Sam here: a courier collects the boots tomorrow. " + "z" * 1850


async def test_dashboard_actions_on_a_full_disk_are_a_polite_503_keeping_what_was_typed(
    aiohttp_client: Any, disk: FullDisk, caplog: pytest.LogCaptureFixture
) -> None:
    flagged, rated_turn, handoff_turn, handoff_cid = await _flagged_site(aiohttp_client, disk.home)
    site, token = flagged.site, flagged.token
    database = _dashboard(site.app)[DATABASE]

    async def on_dashboard(work: Work) -> object:
        return await database.run(lambda store: on_its_connection(store, work))

    def no_wal_left(conn: sqlite3.Connection) -> None:
        # On the real disk a write appends to the WAL first: emptied before the disk is
        # filled, every write needs room, however small (an approval changes a few bytes).
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    if disk.kind == "tmpfs":
        await on_the_store(flagged.store)(no_wal_left)
    caplog.set_level(logging.WARNING)
    await disk.fill(on_the_store(flagged.store), on_dashboard)
    for _ in range(300):  # until the room left inside the files is used up
        if (await flagged.ask(BIG, handoff_cid)).status == 503:
            break
    before = flagged.state()

    # The operator's message to the customer: refused politely, and kept in its box.
    sent = await post(site, f"/ops/conversations/{handoff_cid}/reply", token, text=TYPED_REPLY)
    page = await sent.text()
    assert sent.status == 503 and sent.headers["Retry-After"] == "60"
    assert "Your message was not saved: the disk is full" in page
    assert "what you typed is kept below" in page and f">{TYPED_REPLY}</textarea>" in page
    refused = {"reply": sent.status}
    if disk.kind == "tmpfs":
        # Under the page limit a row changed in place, or one that fits in a page with
        # room left, is still written; on a real full disk nothing is.
        corrected = await post(site, f"/ops/turns/{rated_turn}/correct", token, answer=TYPED_ANSWER)
        page = await corrected.text()
        assert corrected.status == 503 and "The correction was not saved" in page
        assert f">{TYPED_ANSWER}</textarea>" in page
        rejected = await post(site, f"/ops/turns/{rated_turn}/reject", token, reason="Off <topic>")
        page = await rejected.text()
        assert rejected.status == 503 and "The rejection was not saved" in page
        assert 'value="Off &lt;topic&gt;"' in page
        for action, turn_id, said in (
            ("approve", rated_turn, "The approval was not saved"),
            ("resolve", handoff_turn, "Resolving the hand-off was not saved"),
        ):
            response = await post(site, f"/ops/turns/{turn_id}/{action}", token)
            assert response.status == 503 and said in await response.text(), action
            assert response.headers["Retry-After"] == "60"
            refused[action] = response.status
        refused |= {"correct": corrected.status, "reject": rejected.status}
    assert set(refused.values()) == {503}
    # Nothing of them was stored, and nothing before was lost; the cause was logged once
    # (per store), never as a traceback.
    unchanged = flagged.state() == before
    assert unchanged
    assert len(before["flags"]) == 2 and {s for _, s, _ in before["flags"]} == {"open"}
    assert 1 <= len(_health_errors(caplog)) <= 2
    assert not [r for r in caplog.records if r.exc_info is not None]

    # Room again: the same actions go through.
    await disk.free(on_the_store(flagged.store), on_dashboard)
    sent = await post(site, f"/ops/conversations/{handoff_cid}/reply", token, text=TYPED_REPLY)
    assert sent.status == 303 and "notice=replied" in sent.headers["Location"]
    approved = await post(site, f"/ops/turns/{rated_turn}/approve", token)
    assert approved.status == 303 and "notice=approved" in approved.headers["Location"]
    assert "unlogged" not in approved.headers["Location"]
    assert [a for _, a in flagged.rows("SELECT id, action FROM ops_actions")] == [
        "reply",
        "approve",
    ]
    record(
        "faults",
        kill="disk-full (dashboard)",
        disk=disk.kind,
        status=503,
        refused=sorted(refused),
        unchanged=unchanged,
    )
    await site.client.close()
    await flagged.store.aclose()


async def test_an_action_done_when_only_the_review_log_is_full_says_so(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    flagged, rated_turn, _, _ = await _flagged_site(aiohttp_client, tmp_path / "home")
    site, token = flagged.site, flagged.token
    database = _dashboard(site.app)[DATABASE]
    ((conversation_id,),) = flagged.rows(
        f"SELECT conversation_id FROM bot_turns WHERE id = '{rated_turn}'"
    )

    def fill_the_review_log(store: Any) -> int:
        # Only the dashboard's own connection may not grow the file; rows as long as the
        # approval's (same ids, no note) until one is refused: then so is the approval.
        def no_more_pages(conn: sqlite3.Connection) -> None:
            (pages,) = conn.execute("PRAGMA page_count").fetchone()
            conn.execute(f"PRAGMA max_page_count = {pages}")

        on_its_connection(store, no_more_pages)
        for n in range(100_000):
            try:
                store.log_action("alice", ReviewAction.APPROVE, conversation_id, rated_turn, "")
            except sa.exc.OperationalError:
                return n
        raise AssertionError("the review log never filled")

    filled = await database.run(fill_the_review_log)
    assert filled > 0 and len(flagged.rows("SELECT id FROM ops_actions")) == filled
    approved = await post(site, f"/ops/turns/{rated_turn}/approve", token)
    location = approved.headers["Location"]
    assert approved.status == 303 and "notice=approved" in location and "unlogged=1" in location
    assert ("approved", "alice") in [(s, b) for _, s, b in flagged.state()["flags"]]
    view = await site.client.get(location)
    text = await view.text()
    assert view.status == 200 and "Reply approved." in text
    assert "the review log could not record who did it" in text
    assert len(flagged.rows("SELECT id FROM ops_actions")) == filled  # as the page says
    await site.client.close()
    await flagged.store.aclose()
