"""Slack under test: slack-bolt's real handler, signed requests and a fake Slack Web API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from slack_sdk.signature import SignatureVerifier

from bot.app import create_app
from bot.core.config import EngineConfig
from bot.core.types import GenerationRequest
from bot.settings import load_settings
from bot.slack import blocks
from bot.slack.config import SlackConfig
from bot.slack.listeners import TrackedLazyListenerRunner
from bot.slack.server import SLACK_APP
from bot.store.conversations import ConversationDatabase
from tests.support.fakes import FakeGenerator, FakeRetriever, source, split_words
from tests.support.slack_api import BOT_ID, BOT_USER_ID, TEAM_ID, ApiCall, FakeSlackApi
from tests.support.store_reads import find_conversation

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


BOT_TOKEN = "xoxb-test-token"


CUSTOMER = "UCUSTOMER1"


OPERATOR = "UOPERATOR1"


OPS = "COPERATORS"


SUPPORT = "CSUPPORT01"


DM = "DCUSTOMER1"


RETURNS_ANSWER = "Unworn items can be returned within 30 days, see KB-RET-01."


SHIPPING_ANSWER = "Standard shipping takes 3-5 business days (KB-SHP-01)."


_ts_counter = iter(range(1, 1_000_000))


def next_ts() -> str:
    return f"1699000000.{next(_ts_counter):06d}"


def confident() -> FakeRetriever:
    return FakeRetriever(
        answers=[
            source("c-ret#1", "How do I return boots that don't fit?", RETURNS_ANSWER, 0.93),
            source("c-ship#1", "When will my order arrive?", SHIPPING_ANSWER, 0.31),
        ]
    )


def echo_evidence(request: GenerationRequest) -> Sequence[str]:
    """A grounded generator: streams the best evidence's answer word by word."""
    return split_words(request.evidence[0].agent_reply)


# -- building signed requests ----------------------------------------------------------------------
def signed(body: str, *, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}


def event_body(event: dict[str, Any], event_id: str | None = None) -> str:
    return json.dumps(
        {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "api_app_id": "A0SUPPORT",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{time.monotonic_ns()}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
        }
    )


def mention(
    text: str,
    *,
    ts: str | None = None,
    thread_ts: str | None = None,
    user: str = CUSTOMER,
    channel: str = SUPPORT,
) -> dict[str, Any]:
    event = {
        "type": "app_mention",
        "user": user,
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": ts or next_ts(),
        "channel": channel,
        "team": TEAM_ID,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def message(
    text: str,
    *,
    channel: str = SUPPORT,
    ts: str | None = None,
    thread_ts: str | None = None,
    user: str | None = CUSTOMER,
    **extra: Any,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "message",
        "text": text,
        "ts": ts or next_ts(),
        "channel": channel,
        "channel_type": "im" if channel.startswith("D") else "channel",
        "team": TEAM_ID,
    }
    if user is not None:
        event["user"] = user
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event | extra


def click_body(
    action_id: str, value: str, on: ApiCall, *, thread_ts: str | None, user: str = CUSTOMER
) -> str:
    """A ``block_actions`` payload: ``user`` clicked a button of the message ``on`` posted
    (or updated), which is in thread ``thread_ts``."""
    channel, ts = on["channel"], on.get("ts") or on["_ts"]
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "team_id": TEAM_ID},
        "api_app_id": "A0SUPPORT",
        "token": "legacy-verification-token",
        "team": {"id": TEAM_ID, "domain": "example"},
        "container": {"type": "message", "message_ts": ts, "channel_id": channel},
        "channel": {"id": channel, "name": "support"},
        "trigger_id": "1.2.3",
        "response_url": "https://hooks.slack.invalid/actions/1",
        "message": {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "ts": ts,
            "thread_ts": thread_ts or ts,
            "text": on["text"],
            "blocks": on.blocks,
        },
        "actions": [
            {
                "action_id": action_id,
                "block_id": blocks.REPLY_ACTIONS_BLOCK,
                "type": "button",
                "value": value,
                "action_ts": str(time.time()),
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})


# -- the application under test --------------------------------------------------------------------
@dataclass
class SlackHarness:
    """The running app, its store and the fake Slack it talks to."""

    client: TestClient[web.Request, web.Application]
    api: FakeSlackApi
    store: ConversationDatabase  # the replicas' tests use both
    retriever: FakeRetriever
    sent: list[float] = field(default_factory=list)

    async def post(
        self, body: str, headers: dict[str, str], *, form: bool = False
    ) -> ClientResponse:
        content_type = "application/x-www-form-urlencoded" if form else "application/json"
        return await self.client.post(
            "/slack/events", data=body, headers=headers | {"Content-Type": content_type}
        )

    async def send(
        self, event: dict[str, Any], *, event_id: str | None = None, **signing: Any
    ) -> ClientResponse:
        body = event_body(event, event_id)
        response = await self.post(body, signed(body, **signing))
        assert response.status == 200, await response.text()
        return response

    async def click(self, action_id: str, value: str, on: ApiCall, *, user: str = CUSTOMER) -> None:
        ts = on.get("ts") or on["_ts"]
        posted = next(c for c in self.api.of("chat.postMessage") if c.get("_ts") == ts)
        body = click_body(action_id, value, on, thread_ts=posted.get("thread_ts"), user=user)
        response = await self.post(body, signed(body), form=True)
        assert response.status == 200, await response.text()

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until no lazy listener is running (every acknowledged event handled)."""
        runner = self.client.app[SLACK_APP].listener_runner.lazy_listener_runner
        assert isinstance(runner, TrackedLazyListenerRunner)
        deadline = time.monotonic() + timeout
        await asyncio.sleep(0.05)
        while runner.running:
            assert time.monotonic() < deadline, "Slack listeners still running"
            await asyncio.sleep(0.02)

    async def final_reply(self, thread_ts: str, channel: str = SUPPORT) -> ApiCall:
        """The finished reply (with its buttons, or a hand-off note) in a thread."""
        # 30 s, as the browser tests wait: a test process's first reply loads the name
        # models (about 15 s with the CPUs shared), and the first test of this file run
        # alone under load missed 10 s on the unchanged tree too.
        posted = await self.api.wait_for(
            "chat.postMessage", channel=channel, thread_ts=thread_ts, where=_delivered, timeout=30.0
        )
        update = await self.api.wait_for(
            "chat.update",
            channel=channel,
            ts=posted[0]["_ts"],
            where=lambda c: _delivered(c) and _is_final(c),
            timeout=30.0,
        )
        return update[-1]

    async def conversation_of(self, channel: str, thread_ts: str) -> str:
        conversation = await find_conversation(self.store, "slack", f"{channel}:{thread_ts}")
        assert conversation is not None
        return conversation.id


def _delivered(call: ApiCall) -> bool:
    return "_failed" not in call.args


def _is_final(call: ApiCall) -> bool:
    return blocks.RATE_UP in call.action_ids() or any(
        b.get("type") == "context" for b in call.blocks
    )


Start = Callable[..., Awaitable[SlackHarness]]


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackApi]:
    api = await FakeSlackApi(members={OPS: [OPERATOR, "UOPERATOR2", BOT_USER_ID]}).start()
    yield api
    await api.stop()


@pytest.fixture
async def start(
    aiohttp_client: Any, tmp_path: Path, slack_api: FakeSlackApi
) -> AsyncIterator[Start]:
    """Start the whole app with Slack in HTTP mode against the fake Web API."""
    started: list[SlackHarness] = []

    async def start_app(
        *,
        retriever: FakeRetriever | None = None,
        generator: Any = None,
        engine: EngineConfig | None = None,
        home: Path | None = None,
        **slack_fields: Any,
    ) -> SlackHarness:
        home = home or tmp_path / "home"
        fields: dict[str, Any] = {
            "mode": "http",
            "bot_token": BOT_TOKEN,
            "signing_secret": SECRET,
            "slack_api_url": slack_api.api_url,
            "operators_channel": OPS,
            "progress_interval_s": 1.0,
            "user_rate_per_minute": 10_000,
            "user_rate_burst": 1_000,
            "final_retry_backoff_s": 0.1,
        }
        settings = load_settings(
            home=home,
            slack=SlackConfig(**(fields | slack_fields)),
            engine=engine or EngineConfig(),
        )
        store = ConversationDatabase(settings.paths.ensure().database)
        await store.open()
        retriever = retriever or confident()
        app = create_app(
            settings,
            retriever=retriever,
            generator=generator or FakeGenerator(script=echo_evidence),
            store=store,
        )
        client = await aiohttp_client(app)
        harness = SlackHarness(client, slack_api, store, retriever)
        started.append(harness)
        return harness

    yield start_app
    for harness in started:
        await harness.client.close()  # the app first: its listeners may still use the store
        await harness.store.aclose()
