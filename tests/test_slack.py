"""The Slack adapter end to end: signed requests into the real bolt app, a fake Web API.

Each test starts the whole application (``create_app``) on a loopback port with the fake
retriever and generator and a real SQLite store, posts Slack-signed event and interaction
payloads to ``POST /slack/events`` as Slack would, and waits (bounded) for the calls the
bot makes to the fake Slack Web API in tests/slack_fake_api.py, which records them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app import create_app
from bot.core.config import EngineConfig
from bot.core.types import ConversationState, FlagReason, GenerationRequest
from bot.settings import load_settings
from bot.slack import blocks
from bot.slack.config import SlackConfig
from bot.slack.listeners import SUBSCRIBED_EVENTS
from tests.support.corpus import REPO
from tests.support.fakes import FakeGenerator, FakeRetriever, source, split_words
from tests.support.slack import (
    BOT_TOKEN,
    CUSTOMER,
    DM,
    OPERATOR,
    OPS,
    RETURNS_ANSWER,
    SUPPORT,
    Start,
    _is_final,
    confident,
    echo_evidence,
    event_body,
    mention,
    message,
    next_ts,
    signed,
)
from tests.support.slack_api import BOT_USER_ID, FakeSlackApi
from tests.support.store_reads import get_rating, list_flags


def unsure() -> FakeRetriever:
    return FakeRetriever(
        answers=[
            source("c-a#1", "Something else entirely", "An unrelated answer.", 0.12),
            source("c-b#1", "Another thing", "Another unrelated answer.", 0.11),
        ]
    )


@dataclass
class SlowGenerator:
    """Streams the evidence's answer one word every ``delay_s`` seconds."""

    delay_s: float
    version: str | None = "slow-model"

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        for word in echo_evidence(request):
            await asyncio.sleep(self.delay_s)
            yield word


# -- answering -------------------------------------------------------------------------------------
async def test_a_mention_is_answered_in_its_thread_with_buttons(start: Start) -> None:
    bot = await start()
    asked = mention("How do I return boots that don't fit?")
    await bot.send(asked)

    reply = await bot.final_reply(asked["ts"])
    placeholder = bot.api.of("chat.postMessage", channel=SUPPORT)[0]
    assert placeholder["thread_ts"] == asked["ts"]  # in the mention's thread, not the channel
    assert placeholder["text"] == "…thinking"
    assert reply["text"] == RETURNS_ANSWER
    assert reply.action_ids() == [blocks.RATE_UP, blocks.RATE_DOWN, blocks.REQUEST_HANDOFF]
    conversation_id = await bot.conversation_of(SUPPORT, asked["ts"])
    turns = await bot.store.list_turns(conversation_id)
    assert [(t.role, t.text) for t in turns] == [
        ("customer", "How do I return boots that don't fit?"),  # the mention is not stored
        ("bot", RETURNS_ANSWER),
    ]
    assert reply.button_value(blocks.RATE_UP) == turns[1].id
    assert reply.button_value(blocks.REQUEST_HANDOFF) == conversation_id
    assert {c.token for c in bot.api.calls} == {BOT_TOKEN}


async def test_progress_is_shown_by_throttled_updates_of_the_message(start: Start) -> None:
    bot = await start(generator=SlowGenerator(delay_s=0.06), progress_interval_s=0.2)
    asked = mention("How do I return boots?")
    sent_at = time.monotonic()
    response = await bot.send(asked)
    acknowledged_at = time.monotonic()

    reply = await bot.final_reply(asked["ts"])
    assert response.status == 200
    assert acknowledged_at < reply.at  # Slack got its answer before the reply was written
    assert acknowledged_at - sent_at < 3.0
    updates = bot.api.of("chat.update", ts=reply["ts"])
    progress = updates[:-1]
    words = len(split_words(RETURNS_ANSWER))
    assert 1 <= len(progress) < words  # shown while written, not once per word
    for update in progress:
        shown = update["text"].removesuffix(" …")
        assert RETURNS_ANSWER.startswith(shown) and update.action_ids() == []
    gaps = [b.at - a.at for a, b in itertools.pairwise(progress)]
    assert all(gap >= 0.15 for gap in gaps), gaps
    assert updates[-1] is reply


async def test_a_second_message_in_the_thread_continues_the_conversation(start: Start) -> None:
    bot = await start()
    asked = mention("How do I return boots that don't fit?")
    await bot.send(asked)
    await bot.final_reply(asked["ts"])

    follow_up = message("And when will my refund arrive?", thread_ts=asked["ts"])  # no mention
    await bot.send(follow_up)
    await bot.api.wait_for("chat.postMessage", 2, channel=SUPPORT, thread_ts=asked["ts"])
    await bot.idle()

    conversation_id = await bot.conversation_of(SUPPORT, asked["ts"])
    turns = await bot.store.list_turns(conversation_id)
    assert [t.role for t in turns] == ["customer", "bot", "customer", "bot"]
    history = bot.retriever.calls[-1].history
    assert [m.text for m in history][:2] == [
        "How do I return boots that don't fit?",
        RETURNS_ANSWER,
    ]
    # A reply in a thread the bot was never part of is none of its business.
    await bot.send(message("unrelated chatter", thread_ts=next_ts()))
    await bot.idle()
    assert len(bot.api.of("chat.postMessage")) == 2


async def test_an_operator_asking_the_bot_in_their_own_thread_is_answered(start: Start) -> None:
    bot = await start()
    asked = mention("How do I return boots?", user=OPERATOR)
    await bot.send(asked)
    await bot.final_reply(asked["ts"])
    await bot.send(message("And exchanges?", thread_ts=asked["ts"], user=OPERATOR))
    await bot.api.wait_for("chat.postMessage", 2, thread_ts=asked["ts"])
    await bot.idle()
    turns = await bot.store.list_turns(await bot.conversation_of(SUPPORT, asked["ts"]))
    assert [t.role for t in turns] == ["customer", "bot", "customer", "bot"]


async def test_a_reply_can_neither_ping_the_channel_nor_forge_a_link(start: Start) -> None:
    sneaky = "Ask <!channel> & see <https://evil.example|our returns page>."
    answers = [source("c-x#1", "How do I return boots?", sneaky, 0.93), *confident().answers[1:]]
    bot = await start(
        retriever=FakeRetriever(answers=answers), engine=EngineConfig(answer_mode="copy")
    )
    asked = mention("How do I return boots?")
    await bot.send(asked)
    reply = await bot.final_reply(asked["ts"])
    escaped = "Ask &lt;!channel&gt; &amp; see &lt;https://evil.example|our returns page&gt;."
    assert reply["text"] == escaped
    assert reply.blocks[0]["text"]["text"] == escaped


async def test_a_direct_message_is_answered_in_a_thread(start: Start) -> None:
    bot = await start()
    asked = message("How do I return boots?", channel=DM)
    await bot.send(asked)

    reply = await bot.final_reply(asked["ts"], channel=DM)
    assert reply["text"] == RETURNS_ANSWER
    assert bot.api.of("chat.postMessage", channel=DM)[0]["thread_ts"] == asked["ts"]


async def test_a_mention_inside_a_thread_reads_the_question_above(start: Start) -> None:
    bot = await start()
    root = next_ts()
    bot.api.threads[(SUPPORT, root)] = [
        {
            "type": "message",
            "user": CUSTOMER,
            "text": "My boots don't fit, can I send them back?",
            "ts": root,
        },
        {"type": "message", "user": "UCOLLEAGUE", "text": "Let's ask the bot", "ts": next_ts()},
    ]
    asked = mention("", thread_ts=root, user="UCOLLEAGUE")
    await bot.send(asked)

    await bot.final_reply(root)
    question = bot.retriever.calls[0].customer_text
    assert question == "My boots don't fit, can I send them back?\nLet's ask the bot"
    assert bot.api.of("conversations.replies")[0]["ts"] == root


# -- ratings ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action_id", "value"), [(blocks.RATE_UP, "up"), (blocks.RATE_DOWN, "down")]
)
async def test_a_button_click_stores_a_rating(start: Start, action_id: str, value: str) -> None:
    bot = await start()
    asked = mention("How do I return boots?")
    await bot.send(asked)
    reply = await bot.final_reply(asked["ts"])
    turn_id = reply.button_value(action_id)

    await bot.click(action_id, turn_id, reply)
    await bot.idle()

    rating = await get_rating(bot.store, turn_id)
    assert rating is not None and (rating.value, rating.channel) == (value, "slack")
    flags = await list_flags(bot.store, reason=FlagReason.NOT_HELPFUL)
    assert [f.turn_id for f in flags] == ([turn_id] if value == "down" else [])
    thanked = bot.api.of("chat.update", ts=reply["ts"])[-1]
    assert thanked.action_ids() == [blocks.REQUEST_HANDOFF]  # rating buttons gave way to thanks


@pytest.mark.parametrize(
    ("reaction", "value"), [("+1", "up"), ("thumbsdown", "down"), ("-1::skin-tone-3", "down")]
)
async def test_a_reaction_on_a_reply_stores_a_rating(
    start: Start, reaction: str, value: str
) -> None:
    bot = await start()
    asked = mention("How do I return boots?")
    await bot.send(asked)
    reply = await bot.final_reply(asked["ts"])
    turn_id = reply.button_value(blocks.RATE_UP)

    def reacted(ts: str, name: str) -> dict[str, Any]:
        return {
            "type": "reaction_added",
            "user": CUSTOMER,
            "reaction": name,
            "item_user": BOT_USER_ID,
            "item": {"type": "message", "channel": SUPPORT, "ts": ts},
            "event_ts": next_ts(),
        }

    await bot.send(reacted(asked["ts"], reaction))  # on the customer's own message: nothing
    await bot.send(reacted(reply["ts"], "tada"))  # not a rating
    await bot.idle()
    assert await get_rating(bot.store, turn_id) is None

    await bot.send(reacted(reply["ts"], reaction))
    await bot.idle()
    rating = await get_rating(bot.store, turn_id)
    assert rating is not None and (rating.value, rating.channel) == (value, "slack")


# -- hand-off and operators ------------------------------------------------------------------------
async def test_handoff_goes_to_the_operators_and_silences_the_bot_until_handed_back(
    start: Start,
) -> None:
    bot = await start()
    asked = mention("How do I return boots?")
    await bot.send(asked)
    reply = await bot.final_reply(asked["ts"])
    conversation_id = reply.button_value(blocks.REQUEST_HANDOFF)

    await bot.click(blocks.REQUEST_HANDOFF, conversation_id, reply)
    post = (await bot.api.wait_for("chat.postMessage", channel=OPS))[0]
    await bot.idle()
    assert post.get("thread_ts") is None  # a new post in the operators' channel
    permalink = bot.api.of("chat.getPermalink")[0]
    assert (permalink["channel"], permalink["message_ts"]) == (SUPPORT, asked["ts"])
    assert f"archives/{SUPPORT}/p" in post["text"]
    assert post.button_value(blocks.HAND_BACK) == conversation_id
    assert "How do I return boots?" in json.dumps(post.blocks)  # the customer's question
    notice = bot.api.of("chat.postMessage", channel=SUPPORT, thread_ts=asked["ts"])[-1]
    assert "support team" in notice["text"] and notice.action_ids() == []
    conversation = await bot.store.get_conversation(conversation_id)
    assert conversation.state is ConversationState.HUMAN

    posts_before = len(bot.api.of("chat.postMessage"))
    await bot.send(message("Hello? Anyone there?", thread_ts=asked["ts"]))
    await bot.idle()  # one message after the other, as people write
    await bot.send(
        message("Hi, I'm Sam from support. Which size?", thread_ts=asked["ts"], user=OPERATOR)
    )
    await bot.idle()
    assert len(bot.api.of("chat.postMessage")) == posts_before  # the bot stayed quiet
    turns = await bot.store.list_turns(conversation_id)
    assert [(t.role, t.text) for t in turns[-2:]] == [
        ("customer", "Hello? Anyone there?"),
        ("agent", "Hi, I'm Sam from support. Which size?"),
    ]

    await bot.send(message("!handback", thread_ts=asked["ts"], user=OPERATOR))
    await bot.idle()
    assert (await bot.store.get_conversation(conversation_id)).state is ConversationState.BOT
    note = bot.api.of("chat.postMessage", channel=OPS, thread_ts=post["_ts"])
    assert note and OPERATOR in note[0]["text"]
    await bot.send(message("When will my order arrive?", thread_ts=asked["ts"]))
    await bot.api.wait_for("chat.postMessage", 3, channel=SUPPORT, thread_ts=asked["ts"])


async def test_the_handoff_button_pressed_again_says_whether_a_person_has_taken_over(
    start: Start,
) -> None:
    bot = await start()
    asked = mention("How do I return boots?")
    await bot.send(asked)
    answered = await bot.final_reply(asked["ts"])
    conversation_id = answered.button_value(blocks.REQUEST_HANDOFF)
    bot.retriever.answers = []  # the next question is one no log covers
    await bot.send(message("Can you fix my bike?", thread_ts=asked["ts"]))
    await bot.api.wait_for("chat.postMessage", channel=OPS)  # handed off by the bot itself
    await bot.idle()
    assert (await bot.store.get_conversation(conversation_id)).state is ConversationState.HUMAN

    # The first answer's button, pressed now: nobody has written, nobody has it yet.
    await bot.click(blocks.REQUEST_HANDOFF, conversation_id, answered)
    (waiting,) = await bot.api.wait_for("chat.postEphemeral", user=CUSTOMER)
    assert waiting["text"] == (
        "Our support team already has your request; a person will answer in this thread."
    )

    await bot.send(message("Hi, Sam here. Which bike?", thread_ts=asked["ts"], user=OPERATOR))
    await bot.idle()
    await bot.click(blocks.REQUEST_HANDOFF, conversation_id, answered)
    taken = (await bot.api.wait_for("chat.postEphemeral", 2, user=CUSTOMER))[-1]
    assert taken["text"] == "A member of our support team already has this conversation."


async def test_asking_for_a_person_in_words_hands_off_as_the_button_does(start: Start) -> None:
    bot = await start()  # would answer anything it searched for confidently
    asked = message("can I talk to a human please?", channel=DM)
    await bot.send(asked)

    notice = await bot.final_reply(asked["ts"], channel=DM)
    assert notice["text"] == blocks.escape(EngineConfig().handoff_message)
    assert notice.action_ids() == []  # a person is coming: no buttons
    post = (await bot.api.wait_for("chat.postMessage", channel=OPS))[0]
    await bot.idle()
    assert "the customer asked for a person" in json.dumps(post.blocks)
    conversation_id = post.button_value(blocks.HAND_BACK)
    assert (await bot.store.get_conversation(conversation_id)).state is ConversationState.HUMAN
    (flag,) = await list_flags(bot.store)
    assert (flag.reason, flag.detail) == (FlagReason.HANDOFF, "customer_request")


async def test_an_answer_only_a_person_can_act_on_is_not_posted_as_the_customers_request(
    start: Start,
) -> None:
    cancelled = "I've cancelled your order for you; the refund takes 5-7 business days."
    bot = await start(
        retriever=FakeRetriever(answers=[source("c-can#1", "Cancel my order", cancelled, 0.95)]),
        engine=EngineConfig(answer_mode="copy"),
    )
    asked = message("Please cancel my order", channel=DM)
    await bot.send(asked)

    notice = await bot.final_reply(asked["ts"], channel=DM)
    assert notice["text"] == blocks.escape(EngineConfig().action_handoff_message)
    post = (await bot.api.wait_for("chat.postMessage", channel=OPS))[0]
    await bot.idle()
    # It said "the customer asked for a person", who had asked for a cancellation.
    assert "needs a person to act on the order" in json.dumps(post.blocks)
    assert "asked for a person" not in json.dumps(post.blocks)


async def test_an_operator_answers_a_direct_message_from_the_operators_channel(
    start: Start,
) -> None:
    bot = await start(retriever=unsure())
    asked = message("Can I pay with a voucher from 1998?", channel=DM)
    await bot.send(asked)
    reply = await bot.final_reply(asked["ts"], channel=DM)
    assert reply.action_ids() == []  # the bot was unsure: a hand-off, no buttons
    post = (await bot.api.wait_for("chat.postMessage", channel=OPS))[0]
    assert "not confident" in json.dumps(post.blocks)
    conversation_id = post.button_value(blocks.HAND_BACK)

    # Operators cannot post in someone's DM: they reply under the hand-off post instead.
    await bot.send(
        message("Yes, vouchers never expire.", channel=OPS, thread_ts=post["_ts"], user=OPERATOR)
    )
    relayed = (await bot.api.wait_for("chat.postMessage", 2, channel=DM, thread_ts=asked["ts"]))[-1]
    assert relayed["text"] == "Yes, vouchers never expire."
    await bot.idle()
    turns = await bot.store.list_turns(conversation_id)
    assert (turns[-1].role, turns[-1].text) == ("agent", "Yes, vouchers never expire.")

    await bot.click(blocks.HAND_BACK, conversation_id, post, user="UCUSTOMER2")  # not an operator
    await bot.api.wait_for("chat.postEphemeral", user="UCUSTOMER2")
    assert (await bot.store.get_conversation(conversation_id)).state is ConversationState.HUMAN
    await bot.click(blocks.HAND_BACK, conversation_id, post, user="UOPERATOR2")  # a member
    await bot.idle()
    assert (await bot.store.get_conversation(conversation_id)).state is ConversationState.BOT


# -- Slack's retries, forgeries, noise -------------------------------------------------------------
async def test_a_retried_event_is_answered_once_even_after_a_restart(
    start: Start, tmp_path: Path
) -> None:
    bot = await start()
    asked = mention("How do I return boots?")
    sent_at = int(time.time())  # each delivery is signed anew, with its own timestamp
    await bot.send(asked, event_id="Ev0RETRIED", timestamp=sent_at)
    await bot.final_reply(asked["ts"])
    retry_headers = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    body = event_body(asked, "Ev0RETRIED")
    response = await bot.post(body, signed(body, timestamp=sent_at - 10) | retry_headers)
    assert response.status == 200
    # The same message also arrives as a message event (it is in a channel the bot is in).
    await bot.send(message(asked["text"], ts=asked["ts"]))
    await bot.idle()
    await bot.client.close()

    restarted = await start(home=tmp_path / "home")
    response = await restarted.post(body, signed(body, timestamp=sent_at - 20) | retry_headers)
    assert response.status == 200
    await restarted.idle()
    assert len(bot.api.of("chat.postMessage", thread_ts=asked["ts"])) == 1


@pytest.mark.parametrize(
    "forgery",
    ["wrong secret", "tampered body", "stale timestamp", "no signature"],
)
async def test_a_request_slack_did_not_sign_gets_401_and_reaches_nothing(
    start: Start, forgery: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await start()
    body = event_body(mention("How do I return boots?"))
    headers = signed(body)
    if forgery == "wrong secret":
        headers = signed(body, secret="not-the-secret")
    elif forgery == "tampered body":
        body = body.replace("return boots", "refund everything")
    elif forgery == "stale timestamp":
        headers = signed(body, timestamp=int(time.time()) - 6 * 60)
    else:
        headers = {}

    response = await bot.post(body, headers)
    assert response.status == 401
    await bot.idle()
    assert bot.api.calls == []
    assert (await bot.store.counts()).conversations_by_state["bot"] == 0
    assert "boots" not in caplog.text and "refund" not in caplog.text  # no customer text


async def test_a_replayed_request_gets_401(start: Start) -> None:
    bot = await start()
    asked = mention("How do I return boots?")
    body = event_body(asked)
    headers = signed(body)
    assert (await bot.post(body, headers)).status == 200
    assert (await bot.post(body, headers)).status == 401
    await bot.final_reply(asked["ts"])
    await bot.idle()
    assert len(bot.api.of("chat.postMessage")) == 1


@pytest.mark.parametrize(
    "event",
    [
        message("my own reply", user=BOT_USER_ID, channel=DM),
        message("beep", user="UOTHERBOT", channel=DM, bot_id="BOTHER"),
        message("beep", user=None, channel=DM, subtype="bot_message", bot_id="BOTHER"),
        message(
            "", channel=DM, subtype="message_changed", message={"text": "edited", "user": CUSTOMER}
        ),
        message(
            "", user=None, channel=DM, subtype="message_deleted", deleted_ts="1699000000.000001"
        ),
        message("", channel=SUPPORT, subtype="channel_join"),
        message("talking among ourselves", channel=SUPPORT),  # no mention, no known thread
    ],
    ids=["own", "other bot", "bot_message", "edited", "deleted", "join", "chatter"],
)
async def test_the_bot_ignores_itself_other_bots_edits_and_deletions(
    start: Start, event: dict[str, Any]
) -> None:
    bot = await start()
    await bot.send(event)  # acknowledged (200), so Slack does not retry it
    await bot.idle()
    assert [c.method for c in bot.api.calls if c.method != "auth.test"] == []


async def test_the_events_url_answers_slacks_challenge(start: Start) -> None:
    bot = await start()
    body = json.dumps(
        {
            "token": "x",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )
    response = await bot.post(body, signed(body))
    assert response.status == 200
    assert (await response.json())["challenge"].startswith("3eZbrw1a")


# -- Slack API errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("failures", "api_max_retries"),
    [(1, 3), (2, 0)],
    ids=["client honours Retry-After", "delivery retries after the client gave up"],
)
async def test_a_rate_limited_reply_is_delivered_after_retry_after(
    start: Start, failures: int, api_max_retries: int
) -> None:
    bot = await start(api_max_retries=api_max_retries)
    bot.api.fail_next("chat.update", failures, status=429, retry_after=1)
    asked = mention("How do I return boots?")
    await bot.send(asked)

    reply = await bot.final_reply(asked["ts"])
    assert reply["text"] == RETURNS_ANSWER
    limited = [c for c in bot.api.of("chat.update") if c.get("_failed") == 429]
    assert len(limited) == failures
    assert reply.at - limited[-1].at >= 0.95  # waited as long as Slack asked


async def test_server_errors_are_retried(start: Start) -> None:
    bot = await start(api_max_retries=2)
    bot.api.fail_next("chat.postMessage", 2, status=500)
    asked = mention("How do I return boots?")
    await bot.send(asked)
    reply = await bot.final_reply(asked["ts"])
    assert reply["text"] == RETURNS_ANSWER
    assert len([c for c in bot.api.of("chat.postMessage") if c.get("_failed") == 500]) == 2


async def test_a_deleted_placeholder_is_replaced_by_a_new_message(start: Start) -> None:
    bot = await start()
    bot.api.fail_next("chat.update", 1, status=200, error="message_not_found")
    asked = mention("How do I return boots?")
    await bot.send(asked)
    posted = await bot.api.wait_for("chat.postMessage", 2, thread_ts=asked["ts"])
    assert posted[-1]["text"] == RETURNS_ANSWER
    assert posted[-1].action_ids()[0] == blocks.RATE_UP


async def test_an_undeliverable_reply_is_reported_without_its_text(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await start(api_max_retries=0, final_delivery_attempts=2)
    asked = mention("How do I return boots?")
    bot.api.fail_next("chat.update", 50, status=500)
    bot.api.fail_next("chat.postMessage", 1, status=200, error="no_permission")  # placeholder
    bot.api.fail_next("chat.postMessage", 50, status=500)
    with caplog.at_level(logging.ERROR, logger="bot.slack"):
        await bot.send(asked)
        await bot.idle()

    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert SUPPORT in errors[0] and asked["ts"] in errors[0]
    assert "30 days" not in errors[0] and "boots" not in errors[0]
    conversation_id = await bot.conversation_of(SUPPORT, asked["ts"])
    turns = await bot.store.list_turns(conversation_id)
    assert turns[-1].text == RETURNS_ANSWER  # not lost: stored, and in the review tools


async def test_a_user_writing_too_fast_is_asked_to_slow_down(start: Start) -> None:
    bot = await start(user_rate_per_minute=1, user_rate_burst=1)
    first = message("How do I return boots?", channel=DM)
    await bot.send(first)
    await bot.final_reply(first["ts"], channel=DM)
    for text in ("Hello?", "Hello??"):
        await bot.send(message(text, channel=DM))
    await bot.idle()

    notices = [c for c in bot.api.of("chat.postMessage", channel=DM) if "faster" in c["text"]]
    assert len(notices) == 1 and "seconds" in notices[0]["text"]
    assert len(bot.retriever.calls) == 1


# -- Socket Mode -----------------------------------------------------------------------------------
async def test_socket_mode_events_are_acknowledged_and_answered(
    aiohttp_client: Any, tmp_path: Path, slack_api: FakeSlackApi
) -> None:
    settings = load_settings(
        home=tmp_path / "home",
        slack=SlackConfig(
            bot_token=BOT_TOKEN, app_token="xapp-1-test", slack_api_url=slack_api.api_url
        ),
    )
    assert settings.slack.resolved_mode == "socket"
    app = create_app(settings, retriever=confident(), generator=FakeGenerator(script=echo_evidence))
    client = await aiohttp_client(app)
    asked = mention("How do I return boots?")
    envelope_id = await slack_api.push_socket_event(json.loads(event_body(asked)))

    placeholder = (await slack_api.wait_for("chat.postMessage", thread_ts=asked["ts"]))[0]
    await slack_api.wait_for("chat.update", ts=placeholder["_ts"], where=_is_final)
    assert {"envelope_id": envelope_id} in slack_api.socket_acks
    assert slack_api.of("apps.connections.open")[0].token == "xapp-1-test"
    assert (await client.post("/slack/events", data="{}")).status in (404, 405)  # no HTTP route
    await client.close()


# -- configuration and the manifest ----------------------------------------------------------------
def test_slack_settings_come_from_slacks_own_variable_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-env")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "shh")
    monkeypatch.setenv("SUPPORTBOT_SLACK_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("SUPPORTBOT_SLACK__OPERATORS_CHANNEL", "C0OPS")
    settings = load_settings(home=tmp_path)
    slack = settings.slack
    assert slack.resolved_mode == "http"
    assert slack.secret("bot_token") == "xoxb-from-env"
    assert slack.slack_api_url == "http://127.0.0.1:9/api/"
    assert slack.operators_channel == "C0OPS"
    assert "xoxb-from-env" not in repr(settings) and "shh" not in repr(settings)

    monkeypatch.setenv("SUPPORTBOT_SLACK__BOT_TOKEN", "xoxb-prefixed-wins")
    assert load_settings(home=tmp_path).slack.secret("bot_token") == "xoxb-prefixed-wins"
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-abc")
    assert load_settings(home=tmp_path).slack.resolved_mode == "socket"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"app_token": "xoxb-not-an-app-token", "bot_token": "xoxb-a"}, "app_token must start"),
        ({"mode": "http", "bot_token": "xoxb-a"}, "needs signing_secret"),
        ({"operators_channel": "#support"}, "channel id"),
    ],
)
def test_bad_slack_settings_are_named_without_showing_secrets(
    tmp_path: Path, fields: dict[str, str], problem: str
) -> None:
    from bot.settings import SettingsError

    with pytest.raises(SettingsError, match=problem) as raised:
        load_settings(home=tmp_path, slack=fields)
    assert "xoxb-" not in str(raised.value)


def test_no_tokens_no_slack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(home=tmp_path)
    assert settings.slack.resolved_mode == "off"
    app = create_app(settings, retriever=confident(), generator=FakeGenerator())
    assert "/slack/events" not in {r.canonical for r in app.router.resources()}


def test_the_manifest_subscribes_what_the_bot_handles_with_only_the_scopes_it_needs() -> None:
    manifest = yaml.safe_load((REPO / "slack_app_manifest.yaml").read_text())
    settings = manifest["settings"]
    events = set(settings["event_subscriptions"]["bot_events"])
    assert {"app_mention", "reaction_added"} <= events
    assert {e for e in events if e.startswith("message.")} == {
        "message.im",
        "message.channels",
        "message.groups",
    }
    assert {e.split(".")[0] for e in events} == set(SUBSCRIBED_EVENTS)
    assert settings["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == [
        "app_mentions:read",  # app_mention
        "channels:history",  # thread replies and operators' messages in public channels
        "channels:read",  # conversations.members of a public operators' channel
        "chat:write",  # replies, progress updates, hand-off posts, ephemeral notes
        "groups:history",  # the same in private channels (a private operators' channel)
        "groups:read",  # conversations.members of a private operators' channel
        "im:history",  # direct messages
        "reactions:read",  # reaction_added
    ]


@pytest.mark.parametrize("separator", [" ", "\n", "&"])
def test_a_long_reply_is_split_into_sections_without_losing_text(separator: str) -> None:
    words = [f"word{i}" for i in range(1500)]  # about 10,000 characters
    text = separator.join(words)
    pieces = [s["text"]["text"] for s in blocks.text_sections(text)]
    assert len(pieces) >= 4 and all(0 < len(p) <= 3000 for p in pieces)
    assert re.sub(r"\s", "", "".join(pieces)) == re.sub(r"\s", "", blocks.escape(text))
    if separator.isspace():  # cut between words
        assert re.findall(r"word\d+", " ".join(pieces)) == words
    for piece in pieces:  # no escape sequence cut in two
        assert piece.count("&") == piece.count("&amp;")
