"""Slack in front of two replicas that share one real PostgreSQL and nothing else.

Each replica has a home folder of its own, so whatever they agree on went through
PostgreSQL: Slack delivers an event (and retries it, same ``event_id``, signed anew) to
whichever replica its load balancer picks, and an operator's message may reach another
replica than the one that handed the conversation off. Signed requests go into slack-bolt's
real handler on each replica; the bot's calls land on one fake Slack Web API on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.core.config import EngineConfig
from bot.core.types import ConversationState
from bot.settings import load_settings
from bot.slack import blocks
from bot.slack.config import SlackConfig
from bot.store.conversations import ConversationDatabase
from tests.support.fakes import FakeGenerator
from tests.support.slack import (
    BOT_TOKEN,
    OPERATOR,
    OPS,
    RETURNS_ANSWER,
    SECRET,
    SUPPORT,
    SlackHarness,
    confident,
    echo_evidence,
    event_body,
    mention,
    message,
    signed,
)
from tests.support.slack_api import BOT_USER_ID, FakeSlackApi

RETRY = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}

StartReplica = Callable[[str], Awaitable[SlackHarness]]


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackApi]:
    api = await FakeSlackApi(members={OPS: [OPERATOR, BOT_USER_ID]}).start()
    yield api
    await api.stop()


@pytest.fixture
async def start_replica(
    aiohttp_client: Any, tmp_path: Path, slack_api: FakeSlackApi, postgres_url: str
) -> AsyncIterator[StartReplica]:
    """Start a replica named ``name``: the whole app, Slack in HTTP mode, its own home
    folder, the shared PostgreSQL database."""
    started: list[SlackHarness] = []

    async def start(name: str) -> SlackHarness:
        settings = load_settings(
            home=tmp_path / name,
            storage={"database_url": postgres_url},
            engine=EngineConfig(),
            slack=SlackConfig(
                mode="http",
                bot_token=BOT_TOKEN,
                signing_secret=SECRET,
                slack_api_url=slack_api.api_url,
                operators_channel=OPS,
                progress_interval_s=1.0,
                user_rate_per_minute=10_000,
                user_rate_burst=1_000,
            ),
        )
        store = ConversationDatabase(postgres_url, pool_size=4)
        await store.open()
        retriever = confident()
        app = create_app(
            settings,
            retriever=retriever,
            generator=FakeGenerator(script=echo_evidence),
            store=store,
        )
        harness = SlackHarness(await aiohttp_client(app), slack_api, store, retriever)
        started.append(harness)
        return harness

    yield start
    for harness in started:
        await harness.client.close()
        await harness.store.aclose()


@pytest.mark.parametrize("arrival", ["retried later", "at once"])
async def test_an_event_delivered_to_both_replicas_is_answered_once(
    start_replica: StartReplica, arrival: str
) -> None:
    a, b = await start_replica("a"), await start_replica("b")
    asked = mention("How do I return boots?")
    body = event_body(asked, "Ev0TOBOTH")
    sent_at = int(time.time())
    first = signed(body, timestamp=sent_at)
    retry = signed(body, timestamp=sent_at - 1) | RETRY  # Slack signs each delivery anew
    if arrival == "retried later":
        assert (await a.post(body, first)).status == 200
        await a.final_reply(asked["ts"])
        assert (await b.post(body, retry)).status == 200
    else:  # a retry that overtakes the first delivery: the two replicas race for the claim
        responses = await asyncio.gather(a.post(body, first), b.post(body, retry))
        assert [r.status for r in responses] == [200, 200]
    # The mention also arrives as a message event (another event id, same message).
    await b.send(message(asked["text"], ts=asked["ts"]))
    # The very same signed request again, to the other replica: a replay.
    replayed = await b.post(body, first)
    await a.idle()
    await b.idle()

    posts = a.api.of("chat.postMessage", channel=SUPPORT, thread_ts=asked["ts"])
    assert len(posts) == 1
    assert replayed.status == 401
    turns = await b.store.list_turns(await b.conversation_of(SUPPORT, asked["ts"]))
    assert [(t.role, t.text) for t in turns] == [
        ("customer", "How do I return boots?"),
        ("bot", RETURNS_ANSWER),
    ]


async def test_a_handoff_made_on_one_replica_holds_on_the_other(
    start_replica: StartReplica,
) -> None:
    a, b = await start_replica("a"), await start_replica("b")
    asked = mention("How do I return boots?")
    await a.send(asked)
    reply = await a.final_reply(asked["ts"])
    conversation_id = reply.button_value(blocks.REQUEST_HANDOFF)

    # The customer asks for a person through B; B posts the hand-off to the operators.
    await b.click(blocks.REQUEST_HANDOFF, conversation_id, reply)
    post = (await b.api.wait_for("chat.postMessage", channel=OPS))[0]
    await b.idle()
    assert post.button_value(blocks.HAND_BACK) == conversation_id

    # A knows the thread and that it is with a person: it records and stays quiet.
    posts_before = len(a.api.of("chat.postMessage"))
    await a.send(message("Hello? Anyone there?", thread_ts=asked["ts"]))
    await a.idle()
    assert len(a.api.of("chat.postMessage")) == posts_before
    # An operator's answer under B's hand-off post, delivered to A, reaches the customer.
    await a.send(
        message("Which size do you need?", channel=OPS, thread_ts=post["_ts"], user=OPERATOR)
    )
    relayed = await a.api.wait_for(
        "chat.postMessage", channel=SUPPORT, thread_ts=asked["ts"], text="Which size do you need?"
    )
    assert len(relayed) == 1
    await a.idle()
    turns = await a.store.list_turns(conversation_id)
    assert [(t.role, t.text) for t in turns[-2:]] == [
        ("customer", "Hello? Anyone there?"),
        ("agent", "Which size do you need?"),
    ]

    # Handed back through B: B notes it under the hand-off post; A answers again.
    await b.send(message("!handback", thread_ts=asked["ts"], user=OPERATOR))
    await b.idle()
    assert (await a.store.get_conversation(conversation_id)).state is ConversationState.BOT
    note = b.api.of("chat.postMessage", channel=OPS, thread_ts=post["_ts"])
    assert len(note) == 1 and OPERATOR in note[0]["text"]
    answered = len(a.api.of("chat.postMessage", channel=SUPPORT, thread_ts=asked["ts"]))
    await a.send(message("And when will my refund arrive?", thread_ts=asked["ts"]))
    await a.api.wait_for("chat.postMessage", answered + 1, channel=SUPPORT, thread_ts=asked["ts"])
