"""A closing remark after an answer ("ok I will check the guide, thanks") gets the set reply
and the conversation stays with the bot; anything that asks or reports something does not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.config import EngineConfig
from bot.core.types import ConversationState, IncomingMessage, Outcome
from bot.store.conversations import ConversationDatabase
from retrieval.small_talk import Pleasantry, answered_with_set_reply, pleasantry
from tests.support.fakes import FakeRetriever, copying_engine
from tests.support.store_reads import list_flags

THANKS, ACK, BYE = Pleasantry.THANKS, Pleasantry.ACKNOWLEDGEMENT, Pleasantry.GOODBYE

CLOSING_REMARKS = [
    # what the outside tester wrote, and what other customers write
    ("ok I will check the guide, thanks", THANKS),
    # a second tester's, going to do it: "go" before the verb
    ("alright, I'll go print the label then. thank you", THANKS),
    ("ok I'll go check my inbox, thanks", THANKS),
    ("great, I'll try that now", ACK),
    ("perfect that's all I needed", BYE),
    ("ok thanks I'll wait for the email", THANKS),
    ("no that's everything, bye", BYE),
    # thanks and what the customer will do
    ("Thanks! I'll give it a try.", THANKS),
    ("thank you, I will have a look", THANKS),
    ("ok ill check it out thx", THANKS),
    ("Thanks, I'll keep an eye on my inbox", THANKS),
    ("cheers, I'll contact the carrier", THANKS),
    ("thanks so much, I'll wait until Monday then", THANKS),
    ("Thank you! I'm going to reset it now", THANKS),
    ("thanks, let me try that", THANKS),
    ("many thanks, I'll follow the steps", THANKS),
    ("Thanks [NAME], I'll check my account and let you know", THANKS),
    ("ok thank you, will try again tomorrow", THANKS),
    ("appreciate it, I'll read through the article", THANKS),
    ("thanks I'll call my bank", THANKS),
    ("Lovely, thanks. I'll pop into the store on Saturday", THANKS),  # "pop in" is a verb too
    ("Ok, I'll go ahead and place a new order. Thanks!", THANKS),
    ("Thank you, I'll sit tight", THANKS),
    ("awesome thanks, I'll order the bigger size", THANKS),
    ("that worked, thanks!", THANKS),
    ("It works now, thank you so much", THANKS),
    ("found it, thanks", THANKS),
    # an acknowledgement and what the customer will do
    ("ok I'll wait", ACK),
    ("Alright, I will take a look at the guide", ACK),
    ("got it, I'll reach out to the courier", ACK),
    ("sounds good, I'll go ahead with the return", ACK),
    ("Okay, I'll check my spam folder", ACK),
    ("cool, gonna try that", ACK),
    ("ok will do that now", ACK),
    ("perfect, I'll fill out the form", ACK),
    ("great that fixed it", ACK),
    ("all sorted now", ACK),
    # a goodbye
    ("ok I'll check back tomorrow, bye", BYE),
    ("thanks, that's all I need to know", BYE),
    ("nope, that's all for now. thanks", BYE),
    ("great, that's what I was looking for. Have a nice day!", BYE),
    ("Thank you! I'll wait for the label. Have a good one", BYE),
]

NOT_CLOSING = [
    "thanks, I'll go print it but the printer says error",
    "ok I'll go, but where do I print the label?",
    # near misses: thanks or an acknowledgement with a problem, a question or a request
    "thanks but it still doesn't work",
    "ok I will check the guide, but where is it?",
    "thanks, can you also check my other order",
    "ok I will check the guide where is it",
    "thanks, I'll wait but how long will it take",
    "ok I'll wait. it still hasn't arrived",
    "thanks, I haven't received the email",
    "I'll check the guide thanks, what about returns",
    "ok thanks I'll wait for the email?",
    "thanks, I'll try that, if it doesn't work what do I do",
    "ok I'll wait i paid twice",
    "great, I'll send you the photos",
    "ok I will email you the receipt",
    "thanks I'll need a refund",
    "ok I want to cancel it then",
    "thanks, I'll check, could you resend the link",
    "ok I'll try that. Also, can I change my address",
    "great, I'll order again. My order number is JO-300839",
    "thanks I'll wait, not happy though",
    "ok thanks I guess",
    "fine. thanks.",
    "no",
    "nope",
    "no it didn't help",
    "no, I'll wait",
    "that didn't work, thanks",
    "it works now but the app crashes",
    "thanks I'll check the guide please help",
    "will do but the link is broken",
    "ok I'll wait for the refund or should I call",
    "thanks I'll try again, the error is still there",
    "ok I will check, there is nothing in spam",
    "I'll check the guide",  # no thanks or acknowledgement: what follows may be a question
    "I will wait for the email",
    "hi, I'll check the guide",  # a greeting is no closing remark
    "are you a bot? ok I'll check the guide",
    "thanks, I'll check my account and my card and my email and the app",  # too many words
    "thanks, I'll check it. " * 5,  # more than two statements
    "ok I'll try that thanks " + "and " * 40,
    "When will my order arrive?",
]


@pytest.mark.parametrize(("text", "kind"), CLOSING_REMARKS)
def test_a_closing_remark_after_an_answer_is_small_talk(text: str, kind: Pleasantry) -> None:
    assert pleasantry(text, after_answer=True) is kind
    assert answered_with_set_reply(text, after_answer=True)


@pytest.mark.parametrize(("text", "kind"), CLOSING_REMARKS)
def test_a_closing_remark_as_a_first_message_is_searched(text: str, kind: Pleasantry) -> None:
    assert pleasantry(text) is None
    assert not answered_with_set_reply(text, after_answer=False)


@pytest.mark.parametrize("text", NOT_CLOSING)
def test_a_remark_that_asks_or_reports_something_is_a_question(text: str) -> None:
    assert pleasantry(text, after_answer=True) is None
    assert not answered_with_set_reply(text, after_answer=True)


def test_the_longest_phrases_are_read_whole() -> None:
    # The phrase reader stops at 12 words a phrase: these are the longest (7 words).
    assert pleasantry("ok that is all i needed to know, bye", after_answer=True) is BYE
    assert pleasantry("hi am i talking to a real human") is Pleasantry.IDENTITY


@pytest.mark.parametrize("tail", ["", " x", " bye but"])
def test_overlapping_phrases_are_read_to_the_end(tail: str) -> None:
    # "bye" and "bye bye" overlap: the regex this replaced tried every split of a failing
    # message (benchmarks/small_talk_closers.py times it); the answer must not change.
    text = "bye " * 19 + "bye" + tail
    expected = BYE if tail == "" else None
    assert pleasantry(text) is expected
    assert pleasantry(text, after_answer=True) is expected


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ConversationDatabase]:
    store = ConversationDatabase(tmp_path / "bot.db")
    yield store
    await store.aclose()


def shop() -> FakeRetriever:
    """Word-overlap search: the shipping question is answered, a closing remark shares too
    few words with any logged question and would be handed off as one the bot is unsure of."""
    return FakeRetriever.from_pairs(
        [
            ("When will my order arrive?", "Standard shipping takes 3-5 days (KB-SHP-01)."),
            ("How do I return boots?", "See our returns guide (KB-RET-01)."),
        ]
    )


async def test_a_closing_remark_after_an_answer_keeps_the_conversation_with_the_bot(
    store: ConversationDatabase,
) -> None:
    retriever = shop()
    bot = copying_engine(store, retriever)
    conversation = (await bot.start_conversation("web")).id
    answer = await bot.reply(IncomingMessage(conversation, "When will my order arrive?"))
    assert answer.outcome is Outcome.COPIED and len(retriever.calls) == 1

    closing = await bot.reply(IncomingMessage(conversation, "ok I will check the guide, thanks"))

    assert closing.text == EngineConfig().thanks_reply and closing.outcome is Outcome.SMALL_TALK
    assert not closing.handoff and closing.flags == () and closing.sources == ()
    assert len(retriever.calls) == 1  # nothing was looked up
    assert await list_flags(store) == []  # no operator is asked to review it
    assert (await store.get_conversation(conversation)).state is ConversationState.BOT
    # The customer is still answered by the bot, not told the conversation is handed off.
    again = await bot.reply(IncomingMessage(conversation, "How do I return boots?"))
    assert again.outcome is Outcome.COPIED and "KB-RET-01" in again.text
    goodbye = await bot.reply(IncomingMessage(conversation, "perfect that's all I needed"))
    assert goodbye.text == EngineConfig().goodbye_reply and not goodbye.handoff


async def test_before_any_answer_or_with_a_problem_the_remark_is_searched(
    store: ConversationDatabase,
) -> None:
    retriever = shop()
    bot = copying_engine(store, retriever)
    first = (await bot.start_conversation("web")).id
    # Only a greeting so far: nothing answered, nothing to thank for.
    assert (await bot.reply(IncomingMessage(first, "hi"))).outcome is Outcome.SMALL_TALK
    unsure = await bot.reply(IncomingMessage(first, "ok I will check the guide, thanks"))
    assert unsure.handoff and len(retriever.calls) == 1  # searched, as before

    later = (await bot.start_conversation("web")).id
    await bot.reply(IncomingMessage(later, "When will my order arrive?"))
    problem = await bot.reply(IncomingMessage(later, "thanks but it still doesn't arrive"))
    assert problem.outcome is not Outcome.SMALL_TALK and len(retriever.calls) == 3
