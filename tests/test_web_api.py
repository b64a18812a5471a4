"""The web API over a real loopback server: routes, streaming, errors, CORS and limits.

Most tests run the real engine and a real SQLite store with the fake retriever and
generator from tests/fakes.py; a few put a scripted engine behind the routes to make the
failures that the real one never shows on cue (a crash, a model outage mid-stream).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.core.config import EngineConfig
from bot.core.errors import ModelUnavailable
from bot.core.types import (
    Conversation,
    ConversationState,
    IncomingMessage,
    Outcome,
    Rating,
    Reply,
    ReplyDelta,
    ReplyDone,
    ReplyEvent,
    Turn,
)
from bot.store.conversations import ConversationDatabase
from bot.web import ENGINE, ChatEngine, WebConfig, build_web_app
from bot.web.ratelimit import RateLimiter
from finetune.config import GeneratorConfig
from tests.support.corpus import REPO
from tests.support.fakes import FakeGenerator, FakeRetriever, source, split_words
from tests.support.store_reads import get_rating, list_flags
from tests.support.web import (
    RETURNS_ANSWER,
    SHIPPING_ANSWER,
    knowledge,
    make_settings,
    parse_sse,
)

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ConversationDatabase]:
    opened = ConversationDatabase(tmp_path / "conversations.db")
    await opened.open()
    yield opened
    await opened.aclose()


@pytest.fixture
def make_client(aiohttp_client: Any, tmp_path: Path, store: ConversationDatabase) -> ClientFactory:
    """A client of the real app on a free loopback port (generous rate limits unless set)."""

    async def make(
        *,
        retriever: FakeRetriever | None = None,
        generator: FakeGenerator | None = None,
        **web_fields: Any,
    ) -> TestClient[web.Request, web.Application]:
        fields: dict[str, Any] = {"rate_per_minute": 100_000, "rate_burst": 100_000}
        config = WebConfig(**(fields | web_fields))
        app = create_app(
            make_settings(tmp_path / "home", config),
            retriever=retriever or knowledge(),
            generator=generator,
            store=store,
        )
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return make


async def start(client: TestClient[web.Request, web.Application]) -> str:
    response = await client.post("/api/conversations")
    assert response.status == 201
    conversation_id = (await response.json())["conversation_id"]
    assert isinstance(conversation_id, str)
    return conversation_id


async def ask(
    client: TestClient[web.Request, web.Application], conversation_id: str, text: str
) -> dict[str, Any]:
    response = await client.post(
        f"/api/conversations/{conversation_id}/messages", json={"text": text}
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


# -- happy paths -----------------------------------------------------------------------------------
async def test_a_conversation_is_created_and_stored(
    make_client: ClientFactory, store: ConversationDatabase
) -> None:
    client = await make_client()
    conversation_id = await start(client)
    conversation = await store.get_conversation(conversation_id)
    assert conversation.channel == "web"
    assert conversation.state is ConversationState.BOT


async def test_a_message_gets_the_reply_as_json_and_both_turns_are_stored(
    make_client: ClientFactory, store: ConversationDatabase
) -> None:
    client = await make_client()
    conversation_id = await start(client)
    body = await ask(client, conversation_id, "How can I return boots that are too small?")
    assert set(body) == {
        "reply",
        "sources",
        "confidence",
        "handoff",
        "outcome",
        "turn_id",
        "certainty",
    }
    assert body["reply"] == RETURNS_ANSWER  # no generator: the best answer is copied
    assert body["handoff"] is False and body["outcome"] == "copied"
    assert 0.75 <= body["confidence"] <= 1
    assert body["certainty"] == "high"
    # The past customer's question is never sent; the answer's excerpt is not either here,
    # since the reply is that answer, copied: it would only repeat it.
    assert body["sources"][0] == {
        "source_id": "c-ret#1",
        "kind": "log",
        "score": 0.93,
        "links": ["https://shop.example.com/returns"],
    }
    turns = await store.list_turns(conversation_id)
    assert [(t.role, t.text) for t in turns] == [
        ("customer", "How can I return boots that are too small?"),
        ("bot", RETURNS_ANSWER),
    ]
    assert turns[1].id == body["turn_id"]
    assert turns[1].outcome is Outcome.COPIED


@pytest.mark.parametrize(
    ("gift", "sent"),
    [
        ("Hi Sam,\nGift cards never expire (KB-GFT-01).",) * 2,
        # Copied without the sign-off its scrubbed agent's name left dangling: the excerpt
        # is read the same way, so it still repeats the reply and is not sent.
        (
            "Hi,\n\nGift cards never expire (KB-GFT-01).\n\nAll the best,",
            "Hi,\n\nGift cards never expire (KB-GFT-01).",
        ),
    ],
)
async def test_a_source_sends_its_answer_only_where_the_reply_does_not_say_it(
    make_client: ClientFactory, gift: str, sent: str
) -> None:
    """The widget's "Sources (1)" showed a reply's own text again: the copied answer's
    excerpt, for a source with no link. An excerpt is sent where it adds to the reply."""
    retriever = FakeRetriever(answers=[source("c-gift#1", "Do gift cards expire?", gift, 0.95)])
    client = await make_client(retriever=retriever)
    copied = await ask(client, await start(client), "Do gift cards expire?")
    assert copied["reply"] == sent and copied["sources"] == [
        {"source_id": "c-gift#1", "kind": "log", "score": 0.95, "links": []}
    ]
    # A generated reply that says the first answer in its own line breaks and case, but
    # not the second: the second's excerpt is what the customer can read more of.
    said = (
        "Unworn items can be returned within 30 days, see\n"
        "https://shop.example.com/returns (kb-ret-01)."
    )
    client = await make_client(generator=FakeGenerator(pieces=split_words(said)))
    body = await ask(client, await start(client), "How can I return boots that are too small?")
    assert body["reply"] == said
    assert {s["source_id"]: s.get("excerpt") for s in body["sources"]} == {
        "c-ret#1": None,
        "c-ship#1": SHIPPING_ANSWER,
    }


async def test_source_text_can_be_kept_private(make_client: ClientFactory) -> None:
    client = await make_client(expose_source_text=False)
    body = await ask(client, await start(client), "How do I return boots?")
    assert body["sources"] and all(
        set(s) == {"source_id", "kind", "score", "links"} for s in body["sources"]
    )


async def test_the_reply_streams_as_server_sent_events(make_client: ClientFactory) -> None:
    generator = FakeGenerator(pieces=split_words(RETURNS_ANSWER))
    client = await make_client(generator=generator)
    conversation_id = await start(client)
    response = await client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"text": "How do I return boots that don't fit?"},
        headers={"Accept": "text/event-stream"},
    )
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    events = parse_sse(await response.text())
    names = [name for name, _ in events]
    assert names[-1] == "done" and names.count("done") == 1
    assert names.count("delta") >= 3  # piece by piece, not one block at the end
    streamed = "".join(data["text"] for name, data in events if name == "delta")
    done = events[-1][1]
    assert streamed == done["reply"] == RETURNS_ANSWER
    assert set(done) == {
        "reply",
        "sources",
        "confidence",
        "handoff",
        "outcome",
        "turn_id",
        "certainty",
    }


@pytest.mark.parametrize("mode", ["no generator", "copy mode"])
async def test_a_copied_reply_streams_a_word_at_a_time(
    make_client: ClientFactory, tmp_path: Path, mode: str
) -> None:
    generator = FakeGenerator(pieces=split_words("Never sent."))
    if mode == "copy mode":
        (tmp_path / "home").mkdir()
        (tmp_path / "home" / "supportbot.toml").write_text('[engine]\nanswer_mode = "copy"\n')
    client = await make_client(generator=None if mode == "no generator" else generator)
    response = await client.post(
        f"/api/conversations/{await start(client)}/messages",
        json={"text": "How do I return boots that don't fit?"},
        headers={"Accept": "text/event-stream"},
    )
    events = parse_sse(await response.text())
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert len(deltas) == len(RETURNS_ANSWER.split())  # not one block at the end
    assert "".join(deltas) == events[-1][1]["reply"] == RETURNS_ANSWER
    assert generator.requests == []


async def test_a_handoff_says_nothing_of_certainty(make_client: ClientFactory) -> None:
    vague = FakeRetriever(answers=[source("x#1", "q", "Stores open at 9.", 0.3)] * 2)
    client = await make_client(retriever=vague)
    conversation_id = await start(client)
    body = await ask(client, conversation_id, "Can I bring my dog?")
    assert body["handoff"] is True and body["certainty"] is None
    assert body["outcome"] == "handoff"
    response = await client.post(f"/api/conversations/{await start(client)}/handoff")
    assert (await response.json())["certainty"] is None


async def test_each_event_is_sent_as_soon_as_it_is_ready(
    make_client: ClientFactory, store: ConversationDatabase
) -> None:
    """The first pieces reach the client while the model is still busy; when the client
    leaves, generation stops and no bot turn is stored."""
    generator = FakeGenerator(pieces=split_words(RETURNS_ANSWER), stall_after=6)
    client = await make_client(generator=generator)
    conversation_id = await start(client)
    response = await client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"text": "How do I return boots that don't fit?"},
        headers={"Accept": "text/event-stream"},
    )
    first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), timeout=5)
    assert first.startswith(b"event: delta\n")
    response.close()  # the visitor closes the page while the model stalls
    for _ in range(50):
        if generator.closed_early:
            break
        await asyncio.sleep(0.1)
    assert generator.closed_early
    turns = await store.list_turns(conversation_id)
    assert [t.role for t in turns] == ["customer"]


async def test_a_withdrawn_draft_is_retracted_before_the_final_reply(
    make_client: ClientFactory,
) -> None:
    # The generator invents a return window that no evidence backs: the grounding check
    # withdraws what was streamed and the copied answer replaces it.
    generator = FakeGenerator(
        pieces=split_words("Unworn items can be returned within 90 days, no receipt needed.")
    )
    client = await make_client(generator=generator)
    conversation_id = await start(client)
    response = await client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"text": "How do I return boots that don't fit?"},
        headers={"Accept": "text/event-stream"},
    )
    events = parse_sse(await response.text())
    names = [name for name, _ in events]
    assert "retract" in names and names[-1] == "done"
    after = names.index("retract")
    assert events[after][1] == {"reason": "grounding_fallback"}
    final = "".join(data["text"] for name, data in events[after:] if name == "delta")
    assert final == events[-1][1]["reply"]
    assert "90 days" not in events[-1][1]["reply"]


async def test_json_is_answered_when_the_client_does_not_ask_for_a_stream(
    make_client: ClientFactory,
) -> None:
    client = await make_client(generator=FakeGenerator(pieces=split_words(RETURNS_ANSWER)))
    conversation_id = await start(client)
    response = await client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"text": "How do I return boots that don't fit?"},
        headers={"Accept": "text/event-stream;q=0, application/json"},
    )
    assert response.content_type == "application/json"
    assert (await response.json())["reply"] == RETURNS_ANSWER


async def test_a_rating_is_stored_and_a_second_one_replaces_it(
    make_client: ClientFactory, store: ConversationDatabase
) -> None:
    client = await make_client()
    body = await ask(client, await start(client), "How do I return boots?")
    turn_id = body["turn_id"]
    response = await client.post(f"/api/turns/{turn_id}/rating", json={"rating": "up"})
    assert response.status == 200
    assert await response.json() == {"turn_id": turn_id, "rating": "up"}
    stored = await get_rating(store, turn_id)
    assert stored is not None and stored.value == "up" and stored.channel == "web"

    response = await client.post(
        f"/api/turns/{turn_id}/rating", json={"rating": "down", "comment": "too vague"}
    )
    assert response.status == 200
    stored = await get_rating(store, turn_id)
    assert stored is not None and (stored.value, stored.comment) == ("down", "too vague")
    flags = await list_flags(store)
    assert [(f.turn_id, f.reason.value) for f in flags] == [(turn_id, "thumbs_down")]

    # A comment with nothing to read is no comment; the rating stands (the schema fuzzer
    # sent "\x8c" and the whole rating was refused as an empty comment).
    for unreadable in ("\x8c", " \x00\u200b "):
        response = await client.post(
            f"/api/turns/{turn_id}/rating", json={"rating": "up", "comment": unreadable}
        )
        assert response.status == 200
        stored = await get_rating(store, turn_id)
        assert stored is not None and (stored.value, stored.comment) == ("up", None)


async def test_a_handoff_is_stored_and_later_messages_wait_for_an_operator(
    make_client: ClientFactory, store: ConversationDatabase
) -> None:
    client = await make_client()
    conversation_id = await start(client)
    response = await client.post(f"/api/conversations/{conversation_id}/handoff")
    assert response.status == 200
    body = await response.json()
    assert body["handoff"] is True and body["reply"]
    assert (await store.get_conversation(conversation_id)).state is ConversationState.HUMAN
    assert [f.reason.value for f in await list_flags(store)] == ["handoff"]

    response = await client.post(
        f"/api/conversations/{conversation_id}/messages", json={"text": "Hello? Anyone there?"}
    )
    assert response.status == 409
    error = await response.json()
    assert error["error"] == "handed_off" and "will answer" in error["message"]
    turns = await store.list_turns(conversation_id)
    assert (turns[-1].role, turns[-1].text) == ("customer", "Hello? Anyone there?")

    again = await client.post(f"/api/conversations/{conversation_id}/handoff", json={})
    assert again.status == 409


async def test_a_customer_writing_after_an_automatic_handoff_is_not_told_someone_took_over(
    make_client: ClientFactory,
) -> None:
    client = await make_client(retriever=FakeRetriever(answers=[]))
    conversation_id = await start(client)
    assert (await ask(client, conversation_id, "Can you fix my bike?"))["handoff"] is True

    async def write(text: str) -> dict[str, Any]:
        response = await client.post(
            f"/api/conversations/{conversation_id}/messages", json={"text": text}
        )
        assert response.status == 409
        body: dict[str, Any] = await response.json()
        assert body["error"] == "handed_off"
        return body

    # No operator has written yet: the team was asked, nobody has taken over.
    waiting = await write("Hello? Anyone there?")
    assert waiting["message"] == (
        "Your message was passed on to our team; a person will answer here."
    )
    button = await client.post(f"/api/conversations/{conversation_id}/handoff")
    assert button.status == 409
    assert "taken over" not in (await button.json())["message"]

    engine = cast(Any, client.app[ENGINE])
    await engine.add_agent_turn(conversation_id, "Hi, Sam here. Which bike?")
    taken = await write("A red one.")
    assert "a member of our team has taken over this conversation" in taken["message"]
    button = await client.post(f"/api/conversations/{conversation_id}/handoff")
    assert "has taken over" in (await button.json())["message"]

    # Handed back, then handed off by the bot again: Sam's earlier turn is not a person
    # taking over this time.
    await engine.hand_back(conversation_id)
    assert (await ask(client, conversation_id, "And my helmet?"))["handoff"] is True
    again = await write("Hello again?")
    assert again["message"] == waiting["message"]


async def test_asking_for_a_person_in_words_is_the_button_pressed(
    make_client: ClientFactory, store: ConversationDatabase
) -> None:
    client = await make_client()
    typed = await start(client)
    asked = await ask(client, typed, "I want to talk to a real person")
    clicked = await start(client)
    response = await client.post(f"/api/conversations/{clicked}/handoff")
    assert response.status == 200
    pressed = await response.json()

    # Not "I'm not sure I have the right answer to that": the button's "Of course. ...".
    assert asked["reply"] == pressed["reply"] == EngineConfig().handoff_message
    assert {k: v for k, v in asked.items() if k != "turn_id"} == {
        k: v for k, v in pressed.items() if k != "turn_id"
    }
    assert asked["handoff"] is True and asked["certainty"] is None
    for conversation_id in (typed, clicked):
        assert (await store.get_conversation(conversation_id)).state is ConversationState.HUMAN
    flags = await list_flags(store)
    # The operators' queue says "The customer asked for a person" for both, not "Low confidence".
    assert {(f.conversation_id, f.reason.value, f.detail) for f in flags} == {
        (typed, "handoff", "customer_request"),
        (clicked, "handoff", "customer_request"),
    }
    metrics = await (await client.get("/metrics")).text()
    assert 'supportbot_handoffs_total{trigger="customer"} 2.0' in metrics
    assert 'supportbot_handoffs_total{trigger="bot"}' not in metrics
    # The conversation waits for an operator, as after the button.
    response = await client.post(
        f"/api/conversations/{typed}/messages", json={"text": "Hello? Anyone there?"}
    )
    assert response.status == 409 and (await response.json())["error"] == "handed_off"


async def test_the_transcript_lists_every_turn(make_client: ClientFactory) -> None:
    client = await make_client()
    conversation_id = await start(client)
    body = await ask(client, conversation_id, "How do I return boots?")
    response = await client.get(f"/api/conversations/{conversation_id}/turns")
    assert response.status == 200
    data = await response.json()
    assert data["conversation_id"] == conversation_id
    assert [(t["role"], t["text"]) for t in data["turns"]] == [
        ("customer", "How do I return boots?"),
        ("bot", RETURNS_ANSWER),
    ]
    assert data["turns"][1]["turn_id"] == body["turn_id"]


async def test_the_turns_say_who_answers_next(make_client: ClientFactory) -> None:
    """The widget polls the turns while a person has the conversation: ``state`` is how it
    learns that an operator handed the conversation back to the bot."""
    client = await make_client(retriever=FakeRetriever(answers=[]))
    conversation_id = await start(client)

    async def state() -> str:
        response = await client.get(f"/api/conversations/{conversation_id}/turns")
        assert response.status == 200
        return cast(str, (await response.json())["state"])

    assert await state() == "bot"
    assert (await ask(client, conversation_id, "Can you fix my bike?"))["handoff"] is True
    assert await state() == "human"
    await cast(Any, client.app[ENGINE]).hand_back(conversation_id)
    assert await state() == "bot"


async def test_low_confidence_hands_off_and_is_counted(make_client: ClientFactory) -> None:
    client = await make_client(retriever=FakeRetriever(answers=[]))
    body = await ask(client, await start(client), "Can you fix my bike?")
    assert body["handoff"] is True and body["sources"] == []
    metrics = await (await client.get("/metrics")).text()
    assert 'supportbot_handoffs_total{trigger="bot"} 1.0' in metrics
    assert 'supportbot_replies_total{outcome="handoff"} 1.0' in metrics


async def test_the_models_handoff_sentence_reaches_the_customer_as_a_handoff(
    make_client: ClientFactory,
) -> None:
    sentence = GeneratorConfig().handoff_reply  # what the served model was trained to say
    client = await make_client(generator=FakeGenerator(pieces=split_words(sentence)))
    body = await ask(client, await start(client), "How do I return boots that don't fit?")
    assert body["handoff"] is True
    assert body["reply"] == EngineConfig().low_confidence_message


async def test_health_and_metrics(make_client: ClientFactory) -> None:
    client = await make_client(generator=FakeGenerator(pieces=split_words(RETURNS_ANSWER)))
    health = await client.get("/healthz")
    assert health.status == 200 and await health.json() == {"status": "ok"}
    conversation_id = await start(client)
    body = await ask(client, conversation_id, "How do I return boots that don't fit?")
    await client.post(f"/api/turns/{body['turn_id']}/rating", json={"rating": "up"})
    await client.post(f"/api/conversations/{conversation_id}/handoff")
    await client.post("/api/conversations/nope/messages", json={"text": "hi"})

    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    route = "/api/conversations/{conversation_id}/messages"
    assert f'supportbot_http_requests_total{{method="POST",route="{route}",status="200"}} 1.0' in (
        text
    )
    assert f'supportbot_http_requests_total{{method="POST",route="{route}",status="404"}} 1.0' in (
        text
    )
    assert "nope" not in text  # raw paths never become labels
    assert 'supportbot_replies_total{outcome="generated"} 1.0' in text
    assert 'supportbot_ratings_total{value="up"} 1.0' in text
    assert 'supportbot_handoffs_total{trigger="customer"} 1.0' in text
    assert "supportbot_time_to_first_token_seconds_count 1.0" in text
    assert "supportbot_http_request_duration_seconds_bucket" in text


async def test_two_apps_in_one_process_count_separately(make_client: ClientFactory) -> None:
    first, second = await make_client(), await make_client()
    await start(first)
    text = await (await second.get("/metrics")).text()
    assert 'route="/api/conversations"' not in text


# -- the OpenAPI document --------------------------------------------------------------------------
async def test_openapi_lists_exactly_the_routes(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.")
    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    served = {
        (route.resource.canonical, route.method)
        for route in client.app.router.routes()
        if route.resource is not None
        and route.method != "HEAD"
        # The dashboard and Slack's endpoint are not part of the public API.
        and not route.resource.canonical.startswith(("/ops", "/slack"))
    }
    assert documented == served
    for path, item in document["paths"].items():
        for operation in item.values():
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert names == {part[1:-1] for part in path.split("/") if part.startswith("{")}
            assert "200" in operation["responses"] or "201" in operation["responses"]
    refs = json.dumps(document)
    for name in document["components"]["schemas"]:
        assert f"#/components/schemas/{name}" in refs


# -- errors ----------------------------------------------------------------------------------------
async def post_raw(
    client: TestClient[web.Request, web.Application],
    path: str,
    data: bytes | str,
    content_type: str = "application/json",
) -> tuple[int, dict[str, Any]]:
    response = await client.post(path, data=data, headers={"Content-Type": content_type})
    assert response.content_type == "application/json"
    body: dict[str, Any] = await response.json()
    assert set(body) == {"error", "message"}
    return response.status, body


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "invalid_json"),
        ("[1, 2]", "application/json", 400, "invalid_json"),
        ("{}", "application/json", 400, "invalid_request"),
        ('{"text": 42}', "application/json", 400, "invalid_request"),
        ('{"text": "\\ud800 lone surrogate"}', "application/json", 400, "invalid_request"),
        ("text=hello", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ("hello", "text/plain", 415, "unsupported_media_type"),
        ('{"text": ""}', "application/json", 422, "invalid_message"),
        ('{"text": "   \\n\\t "}', "application/json", 422, "invalid_message"),
        (json.dumps({"text": "é" * 2001}), "application/json", 422, "invalid_message"),
    ],
)
async def test_bad_messages_get_a_clear_status(
    make_client: ClientFactory, body: str, content_type: str, status: int, code: str
) -> None:
    client = await make_client()
    conversation_id = await start(client)
    got = await post_raw(
        client, f"/api/conversations/{conversation_id}/messages", body, content_type
    )
    assert got[0] == status and got[1]["error"] == code
    if code == "invalid_message":  # a sentence, as the widget shows it to the customer
        message = got[1]["message"]
        assert message[0].isupper() and message.endswith("."), message


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        (
            "POST",
            "/api/conversations/unknown/messages",
            {"text": "hi"},
            404,
            "conversation_not_found",
        ),
        ("POST", "/api/conversations/unknown/handoff", None, 404, "conversation_not_found"),
        ("GET", "/api/conversations/unknown/turns", None, 404, "conversation_not_found"),
        ("POST", "/api/turns/unknown/rating", {"rating": "up"}, 404, "turn_not_found"),
        ("POST", "/api/turns/x/rating", {"rating": "meh"}, 400, "invalid_request"),
        ("POST", "/api/turns/x/rating", {"rating": "up", "comment": 5}, 400, "invalid_request"),
        ("GET", "/api/nothing-here", None, 404, "not_found"),
        ("GET", "/api/conversations", None, 405, "method_not_allowed"),
        ("DELETE", "/api/turns/x/rating", None, 405, "method_not_allowed"),
    ],
)
async def test_unknown_things_and_wrong_methods(
    make_client: ClientFactory,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    code: str,
) -> None:
    client = await make_client()
    response = await client.request(method, path, json=body)
    assert response.status == status
    data = await response.json()
    assert set(data) == {"error", "message"}
    assert data["error"] == code and data["message"].strip()
    if status == 405:
        assert response.headers["Allow"]


async def test_only_the_bots_replies_can_be_rated(
    make_client: ClientFactory, store: ConversationDatabase
) -> None:
    client = await make_client()
    conversation_id = await start(client)
    await ask(client, conversation_id, "How do I return boots?")
    customer_turn = (await store.list_turns(conversation_id))[0]
    status, body = await post_raw(
        client, f"/api/turns/{customer_turn.id}/rating", json.dumps({"rating": "up"})
    )
    assert (status, body["error"]) == (422, "invalid_message")


async def test_a_body_over_the_limit_is_refused(make_client: ClientFactory) -> None:
    client = await make_client(max_body_bytes=1024)
    conversation_id = await start(client)
    path = f"/api/conversations/{conversation_id}/messages"
    status, body = await post_raw(client, path, json.dumps({"text": "x" * 2000}))
    assert (status, body["error"]) == (413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: stopped while read
        yield b'{"text": "'
        for _ in range(40):
            yield b"y" * 100
        yield b'"}'

    response = await client.post(path, data=chunks(), headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert (await response.json())["error"] == "payload_too_large"


async def test_rate_limit_answers_429_with_retry_after(make_client: ClientFactory) -> None:
    client = await make_client(rate_per_minute=6, rate_burst=3)
    statuses = [(await client.post("/api/conversations")).status for _ in range(3)]
    assert statuses == [201, 201, 201]
    response = await client.post("/api/conversations")
    assert response.status == 429
    assert int(response.headers["Retry-After"]) in range(1, 11)  # one token per 10 s
    assert (await response.json())["error"] == "rate_limited"
    assert (await client.get("/healthz")).status == 200  # only the API is limited
    metrics = await (await client.get("/metrics")).text()
    assert "supportbot_rate_limited_requests_total 1.0" in metrics


async def test_a_forged_forwarded_for_does_not_dodge_the_limit(
    make_client: ClientFactory,
) -> None:
    client = await make_client(rate_per_minute=1, rate_burst=1)
    assert (await client.post("/api/conversations")).status == 201
    forged = {"X-Forwarded-For": "203.0.113.9"}
    assert (await client.post("/api/conversations", headers=forged)).status == 429


async def test_behind_a_trusted_proxy_each_client_has_its_own_limit(
    make_client: ClientFactory,
) -> None:
    client = await make_client(
        rate_per_minute=1, rate_burst=1, trusted_proxy_header="X-Forwarded-For"
    )

    async def post_as(chain: str) -> int:
        return (await client.post("/api/conversations", headers={"X-Forwarded-For": chain})).status

    assert await post_as("198.51.100.1") == 201
    assert await post_as("198.51.100.2") == 201
    # The proxy appends the address it saw; what the client put before it is ignored.
    assert await post_as("198.51.100.2, 198.51.100.1") == 429


def test_the_token_bucket_refills_at_the_configured_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, max_keys=100, clock=lambda: now[0])
    assert limiter.acquire("a") == 0.0 and limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == pytest.approx(1.0)
    assert limiter.acquire("b") == 0.0  # another client has its own bucket
    now[0] += 1.0
    assert limiter.acquire("a") == 0.0
    now[0] += 100.0
    assert [limiter.acquire("a") for _ in range(3)][-1] > 0  # the burst caps the refill
    for n in range(500):
        limiter.acquire(f"client-{n}")
    assert len(limiter._buckets) == 100  # a flood of addresses cannot grow it without end


# -- CORS ------------------------------------------------------------------------------------------
SHOP = "https://shop.example.com"


async def test_a_preflight_from_an_allowed_origin_is_answered(make_client: ClientFactory) -> None:
    client = await make_client(allowed_origins=(SHOP,))
    response = await client.options(
        "/api/conversations/abc/messages",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()
    assert "Origin" in response.headers["Vary"]

    conversation = await client.post("/api/conversations", headers={"Origin": SHOP})
    assert conversation.status == 201
    assert conversation.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Retry-After" in conversation.headers["Access-Control-Expose-Headers"]


async def test_other_origins_are_refused(make_client: ClientFactory) -> None:
    client = await make_client(allowed_origins=(SHOP,))
    evil = "https://evil.example.net"
    preflight = await client.options(
        "/api/conversations", headers={"Origin": evil, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers
    post = await client.post("/api/conversations", headers={"Origin": evil})
    assert post.status == 403 and (await post.json())["error"] == "origin_not_allowed"
    # The widget's files themselves load anywhere (a script tag needs no CORS).
    assert (await client.get("/widget.js", headers={"Origin": evil})).status == 200


async def test_the_servers_own_origin_needs_no_configuration(make_client: ClientFactory) -> None:
    client = await make_client()
    own = f"http://{client.host}:{client.port}"
    assert (await client.post("/api/conversations", headers={"Origin": own})).status == 201


@pytest.mark.parametrize(("trusted", "status"), [("X-Forwarded-For", 201), (None, 403)])
async def test_behind_a_trusted_proxy_the_public_origin_is_the_servers_own(
    make_client: ClientFactory, trusted: str | None, status: int
) -> None:
    client = await make_client(trusted_proxy_header=trusted)
    headers = {"Origin": "https://bot.example.com", "X-Forwarded-Host": "bot.example.com"}
    assert (await client.post("/api/conversations", headers=headers)).status == status


async def test_any_origin_only_when_configured(make_client: ClientFactory) -> None:
    client = await make_client(allowed_origins=("*",))
    anywhere = "https://any.example.org"
    response = await client.post("/api/conversations", headers={"Origin": anywhere})
    assert response.status == 201
    assert response.headers["Access-Control-Allow-Origin"] == anywhere


def test_allowed_origins_are_validated() -> None:
    with pytest.raises(ValueError, match="scheme://host"):
        WebConfig(allowed_origins=("shop.example.com/path",))
    assert WebConfig(allowed_origins=("HTTPS://Shop.Example.com/",)).allowed_origins == (SHOP,)


# -- hostile input ---------------------------------------------------------------------------------
HOSTILE_BODIES: list[tuple[str, bytes, str]] = [
    ("binary", bytes(range(256)) * 8, "application/json"),
    ("binary-octet", b"\x00\xff\xfe" * 100, "application/octet-stream"),
    ("deep-nesting", b"[" * 5000 + b"]" * 5000, "application/json"),
    ("deep-object", b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json"),
    ("huge-unicode", json.dumps({"text": "🙂𝔘\u202e" * 500}).encode(), "application/json"),
    (
        "html",
        json.dumps({"text": "<script>alert(1)</script><img src=x onerror=alert(2)>"}).encode(),
        "application/json",
    ),
    ("nul-and-controls", json.dumps({"text": "a\x00b\x1b[31mc\r\nd"}).encode(), "application/json"),
    ("wrong-charset", '{"text": "é"}'.encode("latin-1"), "application/json; charset=latin-1"),
    ("nan", b'{"text": NaN}', "application/json"),
    ("duplicate-keys", b'{"text": "a", "text": {"x": 1}}', "application/json"),
    ("empty", b"", "application/json"),
    ("unknown-charset", b'{"text": "hi"}', "application/json; charset=no-such-charset"),
]


@pytest.mark.parametrize(
    ("name", "body", "content_type"), HOSTILE_BODIES, ids=[c[0] for c in HOSTILE_BODIES]
)
async def test_hostile_input_never_crashes_the_server(
    make_client: ClientFactory, name: str, body: bytes, content_type: str
) -> None:
    client = await make_client()
    conversation_id = await start(client)
    for path in (
        f"/api/conversations/{conversation_id}/messages",
        "/api/conversations",
        f"/api/conversations/{conversation_id}/handoff",
        "/api/turns/whatever/rating",
    ):
        response = await client.post(path, data=body, headers={"Content-Type": content_type})
        assert response.status < 500, (path, response.status, await response.text())
        if response.status >= 400:
            assert set(await response.json()) == {"error", "message"}
    assert (await client.get("/healthz")).status == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"POST /api/conversations HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST /api/conversations HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(100),  # a TLS hello
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /api/conversations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    ],
    ids=["negative-length", "nul-in-header", "tls-hello", "huge-request-line", "bad-chunk"],
)
async def test_malformed_http_is_refused_and_the_server_keeps_serving(
    make_client: ClientFactory, raw: bytes
) -> None:
    client = await make_client()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), timeout=5)
    writer.close()
    assert answer == b"" or answer.split(b" ", 2)[1][:1] == b"4"
    assert (await client.get("/healthz")).status == 200


async def test_html_in_a_message_comes_back_as_plain_json_text(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    conversation_id = await start(client)
    text = "<b>bold</b> & <script>alert(1)</script>"
    await ask(client, conversation_id, text)
    turns = await (await client.get(f"/api/conversations/{conversation_id}/turns")).json()
    assert turns["turns"][0]["text"] == text


@pytest.mark.parametrize(
    "path",
    [
        "/api/conversations/%00%ff%fe/messages",
        "/api/conversations/" + "a" * 4000 + "/messages",
        "/api/conversations/..%2F..%2Fetc%2Fpasswd/messages",
        "/api/turns/%F0%9F%99%82/rating",
    ],
)
async def test_odd_ids_in_paths_are_just_unknown(make_client: ClientFactory, path: str) -> None:
    client = await make_client()
    response = await client.post(path, json={"text": "hi", "rating": "up"})
    assert response.status in (400, 404)
    assert set(await response.json()) == {"error", "message"}


# -- failures the real engine does not show on cue -------------------------------------------------
class ScriptedEngine:
    """A ChatEngine whose message handling is a script of events and failures."""

    def __init__(self, script: Callable[[], AsyncIterator[ReplyEvent]]) -> None:
        self.script = script

    async def start_conversation(
        self, channel: str, external_ref: str | None = None
    ) -> Conversation:
        return Conversation("c1", channel, ConversationState.BOT, 0.0)

    def handle_message(self, message: IncomingMessage) -> AsyncIterator[ReplyEvent]:
        return self.script()

    async def reply(self, message: IncomingMessage) -> Reply:
        raise NotImplementedError

    async def rate(self, rating: Rating) -> None:
        raise RuntimeError("database password is hunter2")

    async def request_handoff(self, conversation_id: str, reason: str) -> Reply:
        raise ModelUnavailable("worker stopped")

    async def conversation(self, conversation_id: str) -> Conversation:
        return Conversation(conversation_id, "web", ConversationState.BOT, 0.0)

    async def history(self, conversation_id: str) -> list[Turn]:
        return []


@pytest.fixture
def scripted_client(aiohttp_client: Any) -> Callable[..., Awaitable[Any]]:
    async def make(script: Callable[[], AsyncIterator[ReplyEvent]]) -> Any:
        app = build_web_app(WebConfig())
        engine: ChatEngine = ScriptedEngine(script)
        app[ENGINE] = engine
        return await aiohttp_client(app)

    return make


async def test_an_unexpected_error_is_a_500_without_details_and_is_logged(
    scripted_client: Callable[..., Awaitable[Any]], caplog: pytest.LogCaptureFixture
) -> None:
    async def script() -> AsyncIterator[ReplyEvent]:
        raise RuntimeError("secret stack detail")
        yield  # pragma: no cover

    client = await scripted_client(script)
    with caplog.at_level(logging.ERROR, logger="bot.web"):
        response = await client.post("/api/conversations/c1/messages", json={"text": "hi"})
        rating = await client.post("/api/turns/t1/rating", json={"rating": "up"})
    for got in (response, rating):
        assert got.status == 500
        body = await got.json()
        assert body["error"] == "internal_error"
        assert "secret" not in json.dumps(body) and "hunter2" not in json.dumps(body)
    assert any("secret stack detail" in (r.exc_text or "") for r in caplog.records)
    assert not any(r.getMessage() == "hi" for r in caplog.records)


async def test_model_unavailable_is_503_with_retry_after(
    scripted_client: Callable[..., Awaitable[Any]],
) -> None:
    async def script() -> AsyncIterator[ReplyEvent]:
        raise ModelUnavailable("no adapter trained")
        yield  # pragma: no cover

    client = await scripted_client(script)
    for response in (
        await client.post("/api/conversations/c1/messages", json={"text": "hi"}),
        await client.post(
            "/api/conversations/c1/messages",
            json={"text": "hi"},
            headers={"Accept": "text/event-stream"},
        ),
        await client.post("/api/conversations/c1/handoff"),
    ):
        assert response.status == 503
        assert int(response.headers["Retry-After"]) > 0
        assert (await response.json())["error"] == "model_unavailable"


async def test_a_failure_mid_stream_arrives_as_an_error_event(
    scripted_client: Callable[..., Awaitable[Any]],
) -> None:
    async def script() -> AsyncIterator[ReplyEvent]:
        yield ReplyDelta("Refunds take ")
        raise ModelUnavailable("worker died")

    client = await scripted_client(script)
    response = await client.post(
        "/api/conversations/c1/messages",
        json={"text": "hi"},
        headers={"Accept": "text/event-stream"},
    )
    assert response.status == 200
    events = parse_sse(await response.text())
    assert events[0] == ("delta", {"text": "Refunds take "})
    assert events[-1][0] == "error"
    assert events[-1][1]["error"] == "model_unavailable"


async def test_a_stream_that_ends_without_a_reply_is_an_error_event(
    scripted_client: Callable[..., Awaitable[Any]],
) -> None:
    async def script() -> AsyncIterator[ReplyEvent]:
        yield ReplyDelta("Half a")

    client = await scripted_client(script)
    response = await client.post(
        "/api/conversations/c1/messages",
        json={"text": "hi"},
        headers={"Accept": "text/event-stream"},
    )
    events = parse_sse(await response.text())
    assert [name for name, _ in events] == ["delta", "error"]
    assert events[-1][1]["error"] == "internal_error"


async def test_a_scripted_reply_streams_through(
    scripted_client: Callable[..., Awaitable[Any]],
) -> None:
    async def script() -> AsyncIterator[ReplyEvent]:
        yield ReplyDelta("Line one\nline two")
        yield ReplyDone(
            Reply("t1", "c1", "Line one\nline two", Outcome.GENERATED, 0.9, certainty="medium")
        )

    client = await scripted_client(script)
    response = await client.post(
        "/api/conversations/c1/messages",
        json={"text": "hi"},
        headers={"Accept": "text/event-stream"},
    )
    body = await response.text()
    # A newline inside the text stays inside one JSON data line.
    assert body.startswith('event: delta\ndata: {"text":"Line one\\nline two"}\n\n')
    assert parse_sse(body)[-1] == (
        "done",
        {
            "reply": "Line one\nline two",
            "sources": [],
            "confidence": 0.9,
            "handoff": False,
            "outcome": "generated",
            "turn_id": "t1",
            "certainty": "medium",
        },
    )


async def test_healthz_is_503_until_the_engine_is_ready(aiohttp_client: Any) -> None:
    client = await aiohttp_client(build_web_app(WebConfig()))
    response = await client.get("/healthz")
    assert response.status == 503


# -- the app's own wiring --------------------------------------------------------------------------
def test_importing_the_web_app_does_not_import_torch() -> None:
    code = (
        "import sys, bot.app, bot.web, bot.cli; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'faiss' not in sys.modules, 'faiss imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


async def test_the_static_pages_are_served(make_client: ClientFactory) -> None:
    client = await make_client()
    page = await client.get("/")
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    assert '<script src="/widget.js"' in html
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    script = await client.get("/widget.js")
    assert script.status == 200 and "javascript" in script.content_type
    assert script.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert "attachShadow" in await script.text()
    css = await client.get("/widget.css")
    assert css.status == 200 and css.content_type == "text/css"


# -- the real knowledge base behind the app --------------------------------------------------------
@pytest.fixture
def indexed_home(tmp_path: Path, make_knowledge: Callable[..., Any]) -> Iterator[Path]:
    """A home folder with SMALL_LOGS ingested and indexed (the same layout the app opens)."""
    from retrieval.ingest import ingest_paths
    from tests.support.corpus import SMALL_LOGS, write_jsonl

    kb = make_knowledge("home")
    logs = cast("list[dict[str, object]]", SMALL_LOGS)
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", logs)], kb)
    yield tmp_path / "home"


async def test_the_app_serves_from_the_knowledge_base_and_picks_up_a_new_index(
    aiohttp_client: Any,
    tmp_path: Path,
    indexed_home: Path,
    make_knowledge: Callable[..., Any],
) -> None:
    from retrieval.ingest import ingest_paths
    from tests.support.corpus import exchange, write_jsonl

    settings = make_settings(indexed_home, WebConfig(index_refresh_seconds=0.2))
    client = await aiohttp_client(create_app(settings))
    conversation_id = await start(client)
    body = await ask(client, conversation_id, "do gift cards ever expire?")
    assert "never expire" in body["reply"] and body["sources"][0]["source_id"] == "c-gift#1"

    # An ingest job publishes a new index version while the server runs.
    new_logs: list[dict[str, object]] = [
        exchange(
            "c-tent",
            "Can I rent a tent for the weekend?",
            "Yes, tents can be rented from 25 EUR per weekend (KB-RNT-01).",
        )
    ]
    job = make_knowledge("home")
    await asyncio.to_thread(ingest_paths, [write_jsonl(tmp_path / "new.jsonl", new_logs)], job)
    for _ in range(50):
        body = await ask(client, conversation_id, "can I rent a tent for a weekend?")
        if "KB-RNT-01" in body["reply"]:
            break
        await asyncio.sleep(0.2)
    assert "KB-RNT-01" in body["reply"]

    database = indexed_home / "supportbot.db"
    with sqlite3.connect(database) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM bot_turns WHERE conversation_id = ?", (conversation_id,)
        ).fetchone()
    assert count >= 4


def test_answer_command_answers_in_bulk_through_the_engine(
    tmp_path: Path, indexed_home: Path
) -> None:
    from typer.testing import CliRunner

    from bot.cli import app as cli

    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "\n".join(
            [
                json.dumps(
                    {"id": "q1", "messages": [{"role": "user", "text": "Do gift cards expire?"}]}
                ),
                json.dumps(
                    {
                        "id": "q2",
                        "messages": [
                            {"role": "customer", "text": "I sent back a tent last week."},
                            {
                                "role": "agent",
                                "text": "Thanks, the warehouse logs returns within 2 days.",
                            },
                            {"role": "customer", "text": "and when do I get my money?"},
                        ],
                    }
                ),
                "not json",
                json.dumps(
                    {
                        "id": "q3",
                        "messages": [{"role": "customer", "text": "Can you repair my bicycle?"}],
                    }
                ),
            ]
        )
        + "\n"
    )
    out = tmp_path / "out" / "answers.jsonl"
    result = CliRunner().invoke(
        cli, ["--home", str(indexed_home), "answer", "--in", str(questions), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in out.read_text().splitlines()]
    assert [a["id"] for a in answers] == ["q1", "q2", "q3"]
    for answer in answers:
        assert set(answer) == {
            "id",
            "reply",
            "sources",
            "confidence",
            "handoff",
            "outcome",
            "certainty",
        }
    assert "never expire" in answers[0]["reply"] and not answers[0]["handoff"]
    assert "5-7 business days" in answers[1]["reply"]
    assert answers[2]["handoff"] is True
    # Bulk answers are not customer conversations: nothing lands in the real database.
    with sqlite3.connect(indexed_home / "supportbot.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "bot_conversations" in tables:
            assert conn.execute("SELECT count(*) FROM bot_conversations").fetchone() == (0,)
