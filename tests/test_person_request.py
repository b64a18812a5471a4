"""A customer who types that they want a person is handed off as the button hands off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.config import EngineConfig
from bot.core.types import (
    CUSTOMER_REQUEST,
    ConversationState,
    FlagReason,
    IncomingMessage,
    Outcome,
    Reply,
)
from bot.store.conversations import ConversationDatabase
from retrieval.person_request import asks_for_person
from retrieval.small_talk import pleasantry
from tests.support.fakes import FakeRetriever, copying_engine, source
from tests.support.store_reads import list_flags

RETURNS = source(
    "c-ret#1",
    "How do I return boots that don't fit?",
    "Unworn items can be returned within 30 days, see KB-RET-01.",
    0.9,
)

ASKING = [
    # what the tester typed
    "I want to talk to a real person",
    "can I speak to a human please?",
    "agent",
    # only the person, the way people shout it
    "AGENT!!!",
    "Human please",
    "representative",
    "operator",
    "live agent pls",
    "'agent'",
    "real person",
    "agent agent agent",
    "customer service representative please",
    # a request to talk to one, with or without a lead
    "talk to a human",
    "speak to a real person",
    "Speak with an agent",
    "Talk to human.",
    "can i talk to an actual human being",
    "Can I get a human?",
    "Can I have a real person please",
    "may I speak with a representative",
    "let me talk to someone",
    "could you let me talk to a person?",
    "I would like to speak to a human",
    "I'd like to speak with a customer service representative",
    "id like to talk to a person",
    "i wanna talk to a person",
    "I'd rather speak to a human",
    "is it possible to speak to someone?",
    "How do I speak to a person?",
    "Hi, could I please talk to a member of your support team?",
    "Can I speak to the same agent as before?",
    "can I speak to [NAME] again?",  # a name the scrubber replaced
    # wanting one, being put through to one
    "I want a person",
    "I need a human",
    "I need help from a real person",
    "connect me to an agent",
    "Get me a human now!",
    "can you put me through to someone please",
    "is there a human I can talk to?",
    # a request as one sentence of the message
    "ok, agent",
    "hi can I talk to a human",
    "thanks, but can I talk to someone about my refund?",
    "this is not acceptable, I want to speak to a manager",
    "I want to speak to someone as soon as possible",
]

NOT_ASKING = [
    # a person mentioned, not asked for
    "is a human going to read this?",
    "my agent said I would get a refund",
    "the agent told me to return it",
    "agent said I'd get a refund",
    "The agent, however, said no",
    "no agent has replied yet",
    "does the agent know my order number",
    "can the agent call me back tomorrow?",
    "My rep at the store said it was in stock",
    "I spoke to an agent yesterday and they said it shipped",
    "I talked to a person on the phone, they said 5 days",
    "I asked to speak to a manager last week and nobody called",
    "I wanted to speak to someone but the line was busy",
    "did a human check my return?",
    "human error on your side",
    "the operator of the courier lost it",
    "a person at the door took my parcel",
    "people say your boots run small",
    "what are your agents' hours?",
    "How many people work there?",
    "Can I get an agent's name?",
    "How do I become an agent?",
    # what the bot is (small talk), or not wanting a person
    "Am I talking to a human?",
    "are you a real person?",
    "I don't want to talk to a human, just tell me where my order is",
    # a person for something else: a question the logs may answer
    "can a person pick up my order for me?",
    "Can I get someone to pick up the parcel?",
    "I need someone to sign for the parcel",
    "Do I need to talk to an agent to return boots?",
    "Can someone help me with my order?",
    "How can I contact customer service?",
    "I need support with my order",
    "is there a phone number for a representative?",
    "Hello? Anyone there?",
    "speak to you later",
    "I want a refund",
    "thanks",
    "",
    "agent " * 100,  # longer than a request is
]


@pytest.mark.parametrize("text", ASKING)
def test_a_request_for_a_person_is_recognised(text: str) -> None:
    assert asks_for_person(text)
    assert pleasantry(text) is None  # never also small talk


@pytest.mark.parametrize("text", NOT_ASKING)
def test_a_person_mentioned_is_not_a_request(text: str) -> None:
    assert not asks_for_person(text)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ConversationDatabase]:
    store = ConversationDatabase(tmp_path / "bot.db")
    yield store
    await store.aclose()


def what_the_customer_sees(reply: Reply) -> tuple[object, ...]:
    return (
        reply.text,
        reply.outcome,
        reply.flags,
        reply.confidence,
        reply.sources,
        reply.certainty,
        reply.asked_for_person,
    )


async def test_asking_in_words_hands_off_exactly_as_the_button_does(
    store: ConversationDatabase,
) -> None:
    # A confident answer would be found for anything searched: the hand-off is the request's.
    retriever = FakeRetriever(answers=[RETURNS])
    bot = copying_engine(store, retriever)
    typed = (await bot.start_conversation("web")).id
    clicked = (await bot.start_conversation("web")).id

    asked = await bot.reply(IncomingMessage(typed, "Can I speak to a human please?"))
    pressed = await bot.request_handoff(clicked)

    assert asked.text == EngineConfig().handoff_message  # "Of course. I've asked ..."
    assert what_the_customer_sees(asked) == what_the_customer_sees(pressed)
    assert asked.handoff and asked.asked_for_person and asked.flags == (FlagReason.HANDOFF,)
    assert retriever.calls == []  # nothing was looked up
    flags = await list_flags(store)
    assert {(f.conversation_id, f.reason, f.detail) for f in flags} == {
        (typed, FlagReason.HANDOFF, CUSTOMER_REQUEST),
        (clicked, FlagReason.HANDOFF, CUSTOMER_REQUEST),
    }
    for conversation in (typed, clicked):
        assert (await store.get_conversation(conversation)).state is ConversationState.HUMAN
    turns = await store.list_turns(typed)
    assert [(t.role, t.outcome) for t in turns] == [
        ("customer", None),
        ("bot", Outcome.HANDOFF),
    ]
    assert turns[0].text == "Can I speak to a human please?"


async def test_a_mention_of_a_person_is_answered_as_a_question(
    store: ConversationDatabase,
) -> None:
    retriever = FakeRetriever(answers=[RETURNS])
    bot = copying_engine(store, retriever)
    conversation = (await bot.start_conversation("web")).id
    reply = await bot.reply(IncomingMessage(conversation, "the agent told me to return it"))
    assert reply.outcome is Outcome.COPIED and not reply.asked_for_person
    assert len(retriever.calls) == 1
    assert await list_flags(store) == []
    assert (await store.get_conversation(conversation)).state is ConversationState.BOT


async def test_the_bots_own_hand_offs_are_not_the_customers(store: ConversationDatabase) -> None:
    bot = copying_engine(store, FakeRetriever(answers=[]))
    conversation = (await bot.start_conversation("web")).id
    unsure = await bot.reply(IncomingMessage(conversation, "Can you fix my bike?"))
    assert unsure.handoff and not unsure.asked_for_person
    assert unsure.text == EngineConfig().empty_retrieval_message


async def test_answer_small_talk_off_searches_a_request_like_any_question(
    store: ConversationDatabase,
) -> None:
    retriever = FakeRetriever(answers=[source("x#1", "q", "Our stores open at 9.", 0.05)])
    bot = copying_engine(
        store, retriever, answer_small_talk=False, handoff_message="A person is coming."
    )
    conversation = (await bot.start_conversation("web")).id
    reply = await bot.reply(IncomingMessage(conversation, "agent please"))
    assert len(retriever.calls) == 1
    assert reply.handoff and not reply.asked_for_person  # as before: unsure of an answer
    assert reply.text == EngineConfig().low_confidence_message
    (flag,) = await list_flags(store)
    assert flag.reason is FlagReason.LOW_CONFIDENCE


async def test_the_reply_to_a_request_is_the_handoff_message_setting(
    store: ConversationDatabase,
) -> None:
    bot = copying_engine(
        store, FakeRetriever(answers=[RETURNS]), handoff_message="A person is coming."
    )
    conversation = (await bot.start_conversation("web")).id
    reply = await bot.reply(IncomingMessage(conversation, "I want to talk to a real person"))
    assert reply.text == "A person is coming."
