"""Greetings, thanks and goodbyes get their set reply instead of a hand-off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.config import EngineConfig
from bot.core.types import ConversationState, IncomingMessage, Outcome
from bot.store.conversations import ConversationDatabase
from retrieval.small_talk import Pleasantry, answered_with_set_reply, pleasantry
from tests.support.fakes import FakeRetriever, copying_engine, source
from tests.support.store_reads import list_flags

SHIPPING = source(
    "c-ship#1", "When will my order arrive?", "Standard shipping takes 3-5 days (KB-SHP-01).", 0.9
)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("thanks", Pleasantry.THANKS),
        ("Thank you so much!!", Pleasantry.THANKS),
        ("great, thanks for your help 🙏", Pleasantry.THANKS),
        ("thanks [NAME]", Pleasantry.THANKS),  # a name the scrubber replaced
        ("Cheers mate", Pleasantry.THANKS),
        ("hi", Pleasantry.GREETING),
        ("Hello there!", Pleasantry.GREETING),
        ("Good morning!", Pleasantry.GREETING),
        ("hope you're well", Pleasantry.GREETING),
        ("how are you today?", Pleasantry.WELLBEING),
        ("Good morning, how are you?", Pleasantry.WELLBEING),
        ("hey how r u", Pleasantry.WELLBEING),
        ("Hi! How's it going?", Pleasantry.WELLBEING),
        ("how have you been", Pleasantry.WELLBEING),
        ("thanks, how are you?", Pleasantry.THANKS),
        ("ok", Pleasantry.ACKNOWLEDGEMENT),
        ("Got it.", Pleasantry.ACKNOWLEDGEMENT),
        ("ok thanks bye", Pleasantry.GOODBYE),
        ("No thanks, that's all. Have a great day!", Pleasantry.GOODBYE),
        ("are you a robot?", Pleasantry.IDENTITY),
        ("Hi, is this a bot?", Pleasantry.IDENTITY),
        ("Am I talking to a human??", Pleasantry.IDENTITY),
        ("r u a real person", Pleasantry.IDENTITY),
    ],
)
def test_a_message_of_pleasantries_only_is_small_talk(text: str, kind: Pleasantry) -> None:
    assert pleasantry(text) is kind


@pytest.mark.parametrize(
    "text",
    [
        "thanks, but it still hasn't arrived",
        "hi, where is my order?",
        "Hello? Anyone there?",
        "ok so how do I return it",
        "yes",
        "no",
        "good",
        "so much",
        "",
        "thanks " * 30,  # longer than small talk is
        "are you a bot? my parcel is late",
        "how is it going with my refund?",
        "how are you shipping my order?",
        "How are you today? Where is my order?",
        "can I talk to a human?",  # a request for a person (retrieval.person_request)
    ],
)
def test_anything_else_is_a_question(text: str) -> None:
    assert pleasantry(text) is None


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ConversationDatabase]:
    store = ConversationDatabase(tmp_path / "bot.db")
    yield store
    await store.aclose()


async def test_thanks_gets_its_reply_and_the_conversation_stays_with_the_bot(
    store: ConversationDatabase,
) -> None:
    # Every message that is searched finds nothing near enough: it would be handed off.
    retriever = FakeRetriever(answers=[SHIPPING])
    bot = copying_engine(store, retriever)
    conversation = (await bot.start_conversation("web")).id
    first = await bot.reply(IncomingMessage(conversation, "When will my order arrive?"))
    assert first.outcome is Outcome.COPIED and len(retriever.calls) == 1

    thanks = await bot.reply(IncomingMessage(conversation, "Thanks a lot!"))

    assert thanks.text == EngineConfig().thanks_reply and thanks.outcome is Outcome.SMALL_TALK
    assert not thanks.handoff and thanks.flags == () and thanks.sources == ()
    assert thanks.certainty is None  # not an answer: nothing to say how sure of
    assert len(retriever.calls) == 1  # nothing was looked up
    assert await list_flags(store) == []
    assert (await store.get_conversation(conversation)).state is ConversationState.BOT
    stored = (await store.list_turns(conversation))[-1]
    assert (stored.outcome, stored.index_version) == (Outcome.SMALL_TALK, None)
    # The customer can go on asking, and is answered.
    again = await bot.reply(IncomingMessage(conversation, "When will my order arrive?"))
    assert again.outcome is Outcome.COPIED and len(retriever.calls) == 2
    counts = await store.counts()
    assert counts.replies_by_outcome["small_talk"] == 1


async def test_how_are_you_is_answered_not_greeted_again(store: ConversationDatabase) -> None:
    """ "how are you today?" got the greeting's "Hi! How can I help you today?" again, which
    read as if the bot had not listened."""
    retriever = FakeRetriever(answers=[SHIPPING])
    bot = copying_engine(store, retriever)
    conversation = (await bot.start_conversation("web")).id
    hi = await bot.reply(IncomingMessage(conversation, "hi"))
    asked = await bot.reply(IncomingMessage(conversation, "how are you today?"))

    assert hi.text == "Hi! How can I help you today?"
    assert asked.text == "I'm doing well, thanks for asking! How can I help you today?"
    assert asked.outcome is Outcome.SMALL_TALK and not asked.handoff
    assert retriever.calls == []  # nothing was looked up
    # Calibration leaves out what the engine answers with a set reply: the same list.
    assert answered_with_set_reply("how are you today?", after_answer=False)


async def test_the_set_replies_are_settings_and_can_be_turned_off(
    store: ConversationDatabase,
) -> None:
    vague = [source("x#1", "q", "Our stores open at 9.", 0.05)]
    bot = copying_engine(
        store, FakeRetriever(answers=vague), goodbye_reply="Bye from the Juniper team!"
    )
    conversation = (await bot.start_conversation("web")).id
    goodbye = await bot.reply(IncomingMessage(conversation, "that's all, bye"))
    assert goodbye.text == "Bye from the Juniper team!"

    # "are you a robot?" was handed off and waited in the operators' queue.
    asked = await bot.reply(IncomingMessage(conversation, "are you a robot?"))
    assert asked.outcome is Outcome.SMALL_TALK and asked.text.startswith("I'm a virtual assistant")

    off = copying_engine(store, FakeRetriever(answers=vague), answer_small_talk=False)
    conversation = (await off.start_conversation("web")).id
    searched = await off.reply(IncomingMessage(conversation, "thanks"))
    assert searched.outcome is Outcome.HANDOFF  # as before small talk was answered
