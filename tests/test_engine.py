"""The conversation engine with fake retrieval and generation and a real SQLite store."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.retrieval import KnowledgeRetriever
from bot.core.certainty import certainty_of
from bot.core.config import EngineConfig
from bot.core.engine import ConversationEngine
from bot.core.errors import (
    ConversationHandedOff,
    ConversationNotFound,
    CorrectionNotFound,
    InvalidMessage,
    QuestionTaken,
    TurnNotFound,
)
from bot.core.grounding import StreamingGroundingCheck
from bot.core.ports import FlagGate
from bot.core.types import (
    ConversationState,
    FlagReason,
    FlagStatus,
    IncomingMessage,
    Message,
    Outcome,
    Rating,
    Reply,
    ReplyDelta,
    ReplyDone,
    ReplyEvent,
    ReplyRetracted,
    Source,
)
from bot.store.conversations import ConversationDatabase
from retrieval.pii import scrub
from tests.support.fakes import FakeGenerator, FakeRetriever, source, split_words
from tests.support.store_reads import get_rating, list_flags

RETURNS = source(
    "c-ret#1",
    "How do I return boots that don't fit?",
    "Unworn items can be returned within 30 days, see KB-RET-01.",
    0.90,
)
SHIPPING = source(
    "c-ship#1",
    "When will my order arrive?",
    "Standard shipping takes 3-5 business days (KB-SHP-01).",
    0.45,
)
GROUNDED = "You can send unworn boots back within 30 days; KB-RET-01 has the steps."


def scrub_text(text: str) -> str:
    return scrub(text).text


@dataclass
class Bot:
    engine: ConversationEngine
    retriever: FakeRetriever
    generator: FakeGenerator | None
    store: ConversationDatabase

    async def start(self, channel: str = "web") -> str:
        return (await self.engine.start_conversation(channel)).id

    async def send(self, conversation_id: str, text: str) -> tuple[list[ReplyEvent], Reply]:
        message = IncomingMessage(conversation_id, text)
        events = [e async for e in self.engine.handle_message(message)]
        assert isinstance(events[-1], ReplyDone)
        assert not any(isinstance(e, ReplyDone) for e in events[:-1])
        return events, events[-1].reply


MakeBot = Callable[..., Bot]


@pytest.fixture
async def make_bot(tmp_path: Path) -> AsyncIterator[MakeBot]:
    stores: list[ConversationDatabase] = []

    def make(
        answers: list[Source] | None = None,
        pieces: list[str] | None = None,
        *,
        retriever: FakeRetriever | None = None,
        generator: FakeGenerator | str | None = "default",
        generator_handoff_reply: str | None = None,
        flag_gate: FlagGate | None = None,
        **config: Any,
    ) -> Bot:
        store = ConversationDatabase(tmp_path / f"bot{len(stores)}.db")
        stores.append(store)
        retriever = retriever or FakeRetriever(
            answers=[RETURNS, SHIPPING] if answers is None else answers
        )
        if generator == "default":
            generator = FakeGenerator(split_words(GROUNDED) if pieces is None else pieces)
        assert generator is None or isinstance(generator, FakeGenerator)
        engine = ConversationEngine(
            retriever,
            generator,
            store,
            EngineConfig(**config),
            scrub_text,
            curator=retriever,
            generator_handoff_reply=generator_handoff_reply,
            question_finder=retriever,
            flag_gate=flag_gate,
        )
        return Bot(engine, retriever, generator, store)

    yield make
    for store in stores:
        await store.aclose()


def deltas_after_last_retraction(events: list[ReplyEvent]) -> str:
    last = max((i for i, e in enumerate(events) if isinstance(e, ReplyRetracted)), default=-1)
    return "".join(e.text for e in events[last + 1 :] if isinstance(e, ReplyDelta))


# -- answering --------------------------------------------------------------------------------


async def test_a_confident_answer_is_generated_and_streamed(make_bot: MakeBot) -> None:
    bot = make_bot()
    conversation_id = await bot.start()
    events, reply = await bot.send(conversation_id, "How can I return boots that are too small?")

    deltas = [e.text for e in events if isinstance(e, ReplyDelta)]
    assert len(deltas) > 3  # streamed word by word, not in one piece at the end
    assert "".join(deltas) == reply.text == GROUNDED
    assert reply.outcome is Outcome.GENERATED
    assert [s.source_id for s in reply.sources] == ["c-ret#1", "c-ship#1"]
    assert reply.confidence >= EngineConfig().confidence_threshold
    assert reply.flags == ()

    customer, bot_turn = await bot.engine.history(conversation_id)
    assert customer.role == "customer"
    assert customer.text == "How can I return boots that are too small?"
    assert bot_turn.id == reply.turn_id
    assert (bot_turn.role, bot_turn.text, bot_turn.outcome) == ("bot", GROUNDED, Outcome.GENERATED)
    assert bot_turn.confidence == pytest.approx(reply.confidence)
    assert bot_turn.sources == reply.sources
    assert bot_turn.latency_ms is not None and bot_turn.latency_ms >= 0
    assert (bot_turn.index_version, bot_turn.model_version) == ("index-test", "model-test")
    assert await list_flags(bot.store) == []


async def test_an_answer_says_how_sure_it_is_relative_to_the_handoff_threshold(
    make_bot: MakeBot,
) -> None:
    question = "How can I return boots that are too small?"
    bot = make_bot()
    _, reply = await bot.send(await bot.start(), question)
    assert reply.confidence >= 0.75 and reply.certainty == "high"

    # The same answer from a server whose calibrated threshold sits just below it.
    strict = make_bot(confidence_threshold=reply.confidence - (1 - reply.confidence) / 4)
    _, barely = await strict.send(await strict.start(), question)
    assert barely.outcome is Outcome.GENERATED
    assert barely.confidence == pytest.approx(reply.confidence)
    assert barely.certainty == "low"


RETURNS_QUESTION = "How can I return boots that are too small?"


def threshold_for(confidence: float, step: str) -> float:
    """A hand-off threshold below ``confidence`` that puts it in ``step``'s third."""
    # confidence = t + share * (1 - t): the middle of the step's third of the span above t.
    share = {"low": 1 / 6, "medium": 1 / 2, "high": 5 / 6}[step]
    return (confidence - share) / (1 - share)


async def confidence_of_returns(make_bot: MakeBot) -> float:
    bot = make_bot()
    _, reply = await bot.send(await bot.start(), RETURNS_QUESTION)
    return reply.confidence


class RefusingGate:
    """A flag gate whose caps are full: it refuses every flag and remembers which."""

    def __init__(self) -> None:
        self.asked: list[FlagReason] = []

    async def admit(self, reason: FlagReason) -> bool:
        self.asked.append(reason)
        return False


@pytest.mark.parametrize("answer_mode", ["auto", "copy"])
async def test_a_reply_sent_with_low_certainty_waits_for_an_operator(
    make_bot: MakeBot, answer_mode: str
) -> None:
    sure = make_bot(answer_mode=answer_mode)
    _, sure_reply = await sure.send(await sure.start(), RETURNS_QUESTION)
    confidence = sure_reply.confidence
    threshold = threshold_for(confidence, "low")
    bot = make_bot(confidence_threshold=threshold, answer_mode=answer_mode)
    _, reply = await bot.send(await bot.start(), RETURNS_QUESTION)

    # Sent to the customer as it is with more certainty, and in the queue.
    assert reply.outcome is (Outcome.GENERATED if answer_mode == "auto" else Outcome.COPIED)
    assert (reply.text, reply.outcome) == (sure_reply.text, sure_reply.outcome)
    assert reply.certainty == "low"
    assert reply.flags == (FlagReason.UNSURE,)
    [flag] = await list_flags(bot.store)
    assert (flag.turn_id, flag.reason) == (reply.turn_id, FlagReason.UNSURE)
    assert f"confidence {confidence:.3f}" in flag.detail
    assert f"threshold {threshold:.3f}" in flag.detail
    assert "c-ret#1" in flag.detail


@pytest.mark.parametrize("step", ["medium", "high"])
async def test_a_reply_sent_with_more_certainty_is_not_flagged(
    make_bot: MakeBot, step: str
) -> None:
    confidence = await confidence_of_returns(make_bot)
    bot = make_bot(confidence_threshold=threshold_for(confidence, step))
    _, reply = await bot.send(await bot.start(), RETURNS_QUESTION)
    assert reply.certainty == step
    assert reply.flags == ()
    assert await list_flags(bot.store) == []


async def test_a_handoff_is_flagged_as_a_handoff_not_as_unsure(make_bot: MakeBot) -> None:
    confidence = await confidence_of_returns(make_bot)
    bot = make_bot(confidence_threshold=min(confidence + 0.05, 1.0))
    _, reply = await bot.send(await bot.start(), RETURNS_QUESTION)
    assert reply.handoff
    assert [f.reason for f in await list_flags(bot.store)] == [FlagReason.LOW_CONFIDENCE]


async def test_reviewing_unsure_replies_can_be_turned_off(make_bot: MakeBot) -> None:
    confidence = await confidence_of_returns(make_bot)
    bot = make_bot(
        confidence_threshold=threshold_for(confidence, "low"), review_unsure_replies=False
    )
    _, reply = await bot.send(await bot.start(), RETURNS_QUESTION)
    assert (reply.text, reply.certainty, reply.flags) == (GROUNDED, "low", ())
    assert await list_flags(bot.store) == []


async def test_a_refused_unsure_flag_leaves_the_reply_as_it_was(make_bot: MakeBot) -> None:
    confidence = await confidence_of_returns(make_bot)
    threshold = threshold_for(confidence, "low")
    admitted = make_bot(confidence_threshold=threshold)
    _, expected = await admitted.send(await admitted.start(), RETURNS_QUESTION)

    gate = RefusingGate()
    refused = make_bot(confidence_threshold=threshold, flag_gate=gate)
    conversation_id = await refused.start()
    _, reply = await refused.send(conversation_id, RETURNS_QUESTION)
    assert gate.asked == [FlagReason.UNSURE]
    assert (reply.text, reply.outcome, reply.certainty) == (
        expected.text,
        expected.outcome,
        expected.certainty,
    )
    assert await list_flags(refused.store) == []
    # The conversation stays with the bot: the next message is answered.
    _, following = await refused.send(conversation_id, RETURNS_QUESTION)
    assert following.text == GROUNDED


@pytest.mark.parametrize(
    ("confidence", "threshold", "expected"),
    [
        (0.99, 0.25, "high"),
        (0.75, 0.25, "high"),
        (0.74, 0.25, "medium"),
        (0.50, 0.25, "medium"),
        (0.49, 0.25, "low"),
        (0.25, 0.25, "low"),
        (0.10, 0.25, "low"),  # copied under a lower copy_threshold
        (0.78, 0.70, "low"),
        (0.85, 0.70, "medium"),
        (0.95, 0.70, "high"),
        (1.00, 1.00, "high"),
    ],
)
def test_certainty_cuts_the_span_above_the_threshold_in_thirds(
    confidence: float, threshold: float, expected: str
) -> None:
    assert certainty_of(confidence, threshold) == expected


async def test_text_is_released_before_generation_ends(make_bot: MakeBot) -> None:
    bot = make_bot()
    conversation_id = await bot.start()
    assert bot.generator is not None
    stream = bot.engine.handle_message(IncomingMessage(conversation_id, "return boots?"))
    first = await anext(stream)
    assert isinstance(first, ReplyDelta) and first.text == "You"
    assert bot.generator.yielded < len(split_words(GROUNDED))
    await stream.aclose()


@pytest.mark.parametrize("generator", [None, "copy-mode"])
async def test_without_generation_the_best_answer_is_copied(
    make_bot: MakeBot, generator: str | None
) -> None:
    bot = make_bot(generator=None) if generator is None else make_bot(answer_mode="copy")
    events, reply = await bot.send(await bot.start(), "How do I return boots?")
    assert reply.outcome is Outcome.COPIED
    assert reply.text == RETURNS.agent_reply
    assert reply.sources == (RETURNS,)
    deltas = [e.text for e in events if isinstance(e, ReplyDelta)]
    # Streamed a word at a time like a generated reply, though it was ready whole.
    assert deltas == [
        "Unworn ",
        "items ",
        "can ",
        "be ",
        "returned ",
        "within ",
        "30 ",
        "days, ",
        "see ",
        "KB-RET-01.",
    ]
    assert "".join(deltas) == reply.text
    assert bot.generator is None or bot.generator.requests == []


CANCELLED = "It hadn't been packed yet, so I've cancelled it for you. No charge was made."


async def test_a_copied_answer_that_claims_an_action_goes_to_a_person(make_bot: MakeBot) -> None:
    # Copied, it would tell this customer their order was cancelled: nobody cancelled it.
    bot = make_bot(answers=[source("log#7", "cancel my order", CANCELLED)], answer_mode="copy")
    conversation_id = await bot.start()
    _, reply = await bot.send(conversation_id, "Can you cancel my order please?")
    assert reply.outcome is Outcome.HANDOFF and reply.handoff
    assert reply.text == EngineConfig().action_handoff_message
    assert "cancelled" not in reply.text
    (flag,) = await list_flags(bot.store)
    assert flag.reason is FlagReason.HANDOFF
    assert "I've cancelled it for you" in flag.detail and "log#7" in flag.detail
    assert (await bot.store.get_conversation(conversation_id)).state is ConversationState.HUMAN


@pytest.mark.parametrize(
    ("question", "asked", "answer"),
    [
        (
            "ok thanks, I'll email them the photos tonight",
            "I've emailed the photos",
            "Got them, thank you! The correct item is going out by express shipping (1-2"
            " business days), and the prepaid return label will reach your inbox within 1"
            " business day.",
        ),
        (
            "I was charged twice for the same order, can you refund one?",
            "can I cancel my order",
            "I'm sorry — this order has already been packed, so it can no longer be"
            " cancelled. You can return it once it arrives.",
        ),
    ],
    ids=["something received", "this order's state"],
)
async def test_a_copied_answer_that_tells_what_became_of_the_order_goes_to_a_person(
    make_bot: MakeBot, question: str, asked: str, answer: str
) -> None:
    # An outside tester's widget cases: nothing was received or shipped, nobody looked
    # at this customer's order.
    bot = make_bot(answers=[source("log#11", asked, answer)], answer_mode="copy")
    conversation_id = await bot.start()
    _, reply = await bot.send(conversation_id, question)
    assert reply.outcome is Outcome.HANDOFF and reply.handoff
    assert reply.text == EngineConfig().action_handoff_message
    (flag,) = await list_flags(bot.store)
    assert answer.split(". ")[0].split("! ")[0] in flag.detail and "log#11" in flag.detail
    assert (await bot.store.get_conversation(conversation_id)).state is ConversationState.HUMAN


@pytest.mark.parametrize(
    ("question", "asked", "answer"),
    [
        (
            "what's the weather on Mt Hood this weekend?",
            "my tent pole snapped",
            "Hi,\n\nSorry to hear that. Could you send me the order number so I can take a look?",
        ),
        (
            "the Cascade 2 tent has a torn fly, what do I do?",
            "my tent arrived damaged",
            "I'm really sorry your Ridgeback 3P Tent arrived damaged. Please reply with a"
            " couple of photos of the damage and the shipping box. Since it was damaged in"
            " transit, we'll email you a free return label.",
        ),
    ],
    ids=["the order number", "photos"],
)
async def test_a_copied_answer_that_asks_for_details_goes_to_a_person(
    make_bot: MakeBot, question: str, asked: str, answer: str
) -> None:
    # An outside tester's widget cases: the customer sends the number or the photos, and
    # nobody looks at them (the bot looks nothing up; the widget takes text alone).
    bot = make_bot(answers=[source("log#12", asked, answer)], answer_mode="copy")
    conversation_id = await bot.start()
    _, reply = await bot.send(conversation_id, question)
    assert reply.outcome is Outcome.HANDOFF and reply.handoff
    assert reply.text == EngineConfig().action_handoff_message
    (flag,) = await list_flags(bot.store)
    assert flag.reason is FlagReason.HANDOFF
    assert "asks for details" in flag.detail and "log#12" in flag.detail
    assert "order number" in flag.detail or "photos" in flag.detail
    assert (await bot.store.get_conversation(conversation_id)).state is ConversationState.HUMAN


@pytest.mark.parametrize(
    ("kind", "config"),
    [("curated", {}), ("log", {"hand_off_claimed_actions": False})],
    ids=["an operator's correction", "switched off"],
)
async def test_a_claimed_action_is_copied_where_the_operator_says_so(
    make_bot: MakeBot, kind: str, config: dict[str, bool]
) -> None:
    answer = source("a#1", "cancel my order", CANCELLED, kind=kind)
    bot = make_bot(answers=[answer], answer_mode="copy", **config)
    _, reply = await bot.send(await bot.start(), "Can you cancel my order please?")
    assert reply.outcome is Outcome.COPIED and reply.text == CANCELLED


async def test_a_copied_promise_to_send_an_article_names_the_article_instead(
    make_bot: MakeBot,
) -> None:
    promised = source(
        "log#9",
        "do points expire",
        "Points expire after 12 months. I'm sending you a link to article KB-LOY-01 right now.",
    )
    bot = make_bot(answers=[promised], answer_mode="copy")
    _, reply = await bot.send(await bot.start(), "Do my points expire?")
    assert reply.outcome is Outcome.COPIED
    assert reply.text == "Points expire after 12 months. See KB-LOY-01."


# A past agent's e-mail as the logs hold it once scrubbed: its agent's name went from the
# sign-off, leaving "All the best," with nobody signing.
EMAILED = source(
    "log#11",
    "where is my order",
    "Hi,\n\nOrders ship within 1 business day, and the tracking link is in your confirmation"
    " email (KB-ORD-01).\n\n"
    "If you have any other questions, just reply to this email.\n\nAll the best,",
)
# (Not "Could you send me the order number?": the engine hands that to a person.)
TRACKING = (
    "Orders ship within 1 business day, and the tracking link is in your confirmation email"
    " (KB-ORD-01)."
)


async def test_a_copied_email_reads_as_a_chat_reply(make_bot: MakeBot) -> None:
    bot = make_bot(answers=[EMAILED, SHIPPING], answer_mode="copy")
    conversation_id = await bot.start()
    events, first = await bot.send(conversation_id, "Where is my order?")
    # No dangling sign-off, no "reply to this email" in a chat; the greeting opens it.
    assert first.outcome is Outcome.COPIED
    assert first.text == f"Hi,\n\n{TRACKING}"
    assert "".join(e.text for e in events if isinstance(e, ReplyDelta)) == first.text
    assert first.sources == (EMAILED,)  # the source as the logs hold it, for the operator
    _, later = await bot.send(conversation_id, "It was a tent, ordered last week")
    assert later.text == TRACKING  # mid-conversation: no fresh "Hi,"
    stored = [t.text for t in await bot.engine.history(conversation_id) if t.role == "bot"]
    assert stored == [first.text, later.text]


async def test_a_grounding_fallback_copies_the_reply_chat_ready(make_bot: MakeBot) -> None:
    # The generated reply invents a number: the check stops it and the copy goes instead,
    # checked, flagged and sourced as before, without the e-mail's sign-off.
    bot = make_bot(
        answers=[EMAILED, SHIPPING], pieces=split_words("Your order ships in 45 days, sorry.")
    )
    conversation_id = await bot.start()
    _, small_talk = await bot.send(conversation_id, "hi")
    assert small_talk.outcome is Outcome.SMALL_TALK  # the bot has greeted already
    events, reply = await bot.send(conversation_id, "Where is my order?")
    assert reply.outcome is Outcome.COPIED
    assert reply.text == TRACKING == deltas_after_last_retraction(events)
    assert "45" not in "".join(e.text for e in events if isinstance(e, ReplyDelta))
    assert reply.sources == (EMAILED,)
    assert reply.flags == (FlagReason.GROUNDING_FALLBACK,)


@pytest.mark.parametrize("mid_conversation", [False, True], ids=["first-reply", "mid-conversation"])
async def test_a_generated_email_is_sent_as_the_chat_reply_the_generator_learns(
    make_bot: MakeBot, mid_conversation: bool
) -> None:
    # What an adapter trained on the logs as they were writes: a greeting and a signature
    # of the name placeholder, and the e-mail's closing lines. It goes out as the reply the
    # generator now learns to write (finetune.examples.reply_target).
    written = (
        f"Hi [NAME],\n\n{TRACKING}\n\n"
        "If you have any other questions, just reply to this email.\n\nAll the best,\n[NAME]"
    )
    bot = make_bot(answers=[EMAILED, SHIPPING], pieces=split_words(written))
    conversation_id = await bot.start()
    if mid_conversation:
        await bot.send(conversation_id, "hi")  # the bot has greeted already
    events, reply = await bot.send(conversation_id, "Where is my order?")
    assert reply.outcome is Outcome.GENERATED
    assert reply.text == (TRACKING if mid_conversation else f"Hi,\n\n{TRACKING}")
    assert deltas_after_last_retraction(events) == reply.text
    assert "[NAME]" not in reply.text


async def test_a_generated_reply_that_claims_an_action_goes_to_a_person(
    make_bot: MakeBot,
) -> None:
    claimed = "Good news, I've cancelled your order for you, see KB-RET-01."
    bot = make_bot(pieces=split_words(claimed))
    events, reply = await bot.send(await bot.start(), "Can you cancel my order please?")
    assert reply.outcome is Outcome.HANDOFF
    assert reply.text == EngineConfig().action_handoff_message
    # Whatever went out before the end is withdrawn: the final text has no claim.
    assert "cancelled" not in deltas_after_last_retraction(events)
    assert reply.flags == (FlagReason.HANDOFF,)


async def test_a_generated_promise_to_send_an_article_names_it_instead(make_bot: MakeBot) -> None:
    promised = "Unworn boots go back within 30 days. I'll email you the article KB-RET-01."
    bot = make_bot(pieces=split_words(promised))
    events, reply = await bot.send(await bot.start(), "How do I return boots?")
    assert reply.outcome is Outcome.GENERATED
    assert reply.text == "Unworn boots go back within 30 days. See KB-RET-01."
    assert deltas_after_last_retraction(events) == reply.text


# -- grounding --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "invented",
    ["45", "KB-RET-09", "https://boots.example.com/free", "$120", "help@boots.example.com"],
)
async def test_an_invented_fact_is_never_released(make_bot: MakeBot, invented: str) -> None:
    text = f"You can send unworn boots back within 30 days, see {invented} for more, thanks."
    bot = make_bot(pieces=split_words(text))
    conversation_id = await bot.start()
    events, reply = await bot.send(conversation_id, "How do I return boots?")

    assert isinstance(events[0], ReplyDelta)  # the grounded start went out ...
    retraction = next(i for i, e in enumerate(events) if isinstance(e, ReplyRetracted))
    assert events[retraction] == ReplyRetracted(FlagReason.GROUNDING_FALLBACK)  # ... then back
    released = "".join(e.text for e in events[:retraction] if isinstance(e, ReplyDelta))
    assert released.startswith("You can send unworn boots")
    assert invented.strip("$") not in "".join(e.text for e in events if isinstance(e, ReplyDelta))

    assert reply.outcome is Outcome.COPIED
    assert reply.text == RETURNS.agent_reply == deltas_after_last_retraction(events)
    assert reply.sources == (RETURNS,)
    assert reply.flags == (FlagReason.GROUNDING_FALLBACK,)
    assert bot.generator is not None and bot.generator.closed_early  # generation stopped
    (flag,) = await list_flags(bot.store)
    assert (flag.reason, flag.turn_id) == (FlagReason.GROUNDING_FALLBACK, reply.turn_id)
    assert "unsupported" in flag.detail
    assert (await bot.store.get_conversation(conversation_id)).state is ConversationState.BOT


async def test_a_grounding_fallback_sent_while_unsure_is_flagged_once(make_bot: MakeBot) -> None:
    # The fallback is in the queue already: a second flag would list the turn twice.
    invented = split_words("You can send unworn boots back within 45 days, see KB-RET-01.")
    sure_bot = make_bot(pieces=invented)
    _, sure = await sure_bot.send(await sure_bot.start(), "How do I return boots?")
    bot = make_bot(pieces=invented, confidence_threshold=threshold_for(sure.confidence, "low"))
    _, reply = await bot.send(await bot.start(), "How do I return boots?")
    assert (reply.outcome, reply.certainty) == (Outcome.COPIED, "low")
    assert reply.flags == (FlagReason.GROUNDING_FALLBACK,)
    assert [f.reason for f in await list_flags(bot.store)] == [FlagReason.GROUNDING_FALLBACK]


async def test_an_invented_fact_in_the_first_words_needs_no_retraction(make_bot: MakeBot) -> None:
    bot = make_bot(pieces=split_words("555-0199 is our returns line, call us."))
    events, reply = await bot.send(await bot.start(), "How do I return boots?")
    assert not any(isinstance(e, ReplyRetracted) for e in events)
    assert "".join(e.text for e in events if isinstance(e, ReplyDelta)) == reply.text
    assert reply.outcome is Outcome.COPIED


async def test_an_ungrounded_reply_hands_off_when_copying_is_not_confident_enough(
    make_bot: MakeBot,
) -> None:
    bot = make_bot(pieces=split_words("Returns are free for 90 days."), copy_threshold=0.999)
    conversation_id = await bot.start()
    _, reply = await bot.send(conversation_id, "How do I return boots?")
    assert reply.outcome is Outcome.HANDOFF
    assert reply.text == EngineConfig().low_confidence_message
    assert reply.flags == (FlagReason.GROUNDING_FALLBACK,)
    assert (await bot.store.get_conversation(conversation_id)).state is ConversationState.HUMAN


async def test_facts_from_the_conversation_itself_may_be_repeated(make_bot: MakeBot) -> None:
    answer = "I've noted order ORD-2024-77; unworn items can be returned within 30 days."
    bot = make_bot(pieces=split_words(answer))
    _, reply = await bot.send(await bot.start(), "I want to return order ORD-2024-77, boots")
    assert (reply.outcome, reply.text) == (Outcome.GENERATED, answer)


@pytest.mark.parametrize(
    "pieces",
    [
        ["KB-RE", "T-0", "1 is the article."],
        ["See KB-RET-", "01", "."],
        ["  Within", " 3", "0", " days.  \n"],
    ],
)
def test_grounding_check_holds_back_incomplete_words(pieces: list[str]) -> None:
    check = StreamingGroundingCheck(["Unworn items within 30 days, see KB-RET-01."])
    released = [check.feed(p).text for p in pieces]
    assert "".join(released).rstrip() == "".join(released)  # trailing space is held back
    last = check.finish()
    assert last.grounded
    assert "".join([*released, last.text]) == check.text == "".join(pieces).strip()


def test_grounding_check_stops_at_a_number_split_across_pieces() -> None:
    check = StreamingGroundingCheck(["Returns within 30 days."])
    steps = [check.feed(p) for p in ["Returns within ", "3", "00", " days."]]
    assert "".join(s.text for s in steps) == "Returns within"
    assert steps[-1].unsupported == frozenset({"300"})
    assert check.feed(" more").unsupported == frozenset({"300"})  # stays stopped


def test_grounding_check_can_hold_back_extra_words() -> None:
    check = StreamingGroundingCheck(["a b c"], holdback_words=2)
    assert [check.feed(p).text for p in ["a ", "b ", "c ", "d "]] == ["", "", "a", " b"]


# -- handing off -------------------------------------------------------------------------------


async def test_low_confidence_hands_off_and_the_bot_then_stays_quiet(make_bot: MakeBot) -> None:
    vague = [source("x#1", "q", "Our stores open at 9.", 0.31), source("y#1", "q", "B", 0.29)]
    bot = make_bot(answers=vague)
    conversation_id = await bot.start()
    events, reply = await bot.send(conversation_id, "Can I bring my dog to the store?")

    assert reply.outcome is Outcome.HANDOFF and reply.handoff
    assert reply.text == EngineConfig().low_confidence_message
    deltas = [e.text for e in events if isinstance(e, ReplyDelta)]
    assert len(deltas) == len(reply.text.split()) and "".join(deltas) == reply.text
    assert reply.confidence < EngineConfig().confidence_threshold
    assert reply.certainty is None  # no answer, so nothing to be sure of
    assert reply.flags == (FlagReason.LOW_CONFIDENCE,)
    assert bot.generator is not None and bot.generator.requests == []
    (flag,) = await list_flags(bot.store)
    assert flag.reason is FlagReason.LOW_CONFIDENCE and "x#1" in flag.detail
    assert (await bot.store.get_conversation(conversation_id)).state is ConversationState.HUMAN

    with pytest.raises(ConversationHandedOff):
        await bot.engine.reply(IncomingMessage(conversation_id, "Hello? Anyone there?"))
    turns = await bot.engine.history(conversation_id)
    assert [(t.role, t.text) for t in turns[-2:]] == [
        ("bot", reply.text),
        ("customer", "Hello? Anyone there?"),  # kept for the operator, not answered
    ]
    assert len(bot.retriever.calls) == 1


MODEL_HANDOFF = "I'm not sure about this one, so I'm passing you to a colleague who can check."


@pytest.mark.parametrize(
    ("generated", "shown_first"),
    [
        (MODEL_HANDOFF + " Have a nice day!", False),  # the model is stopped after the sentence
        ("i'm NOT sure about this one so I\u2019m passing you to a colleague who can check", False),
        ("I'm not sure about this one, so I'm passing you to a", False),  # cut short
        ("Thanks for asking. " + MODEL_HANDOFF, True),  # after a preamble: withdrawn
    ],
)
async def test_the_generators_handoff_sentence_hands_off(
    make_bot: MakeBot, generated: str, shown_first: bool
) -> None:
    bot = make_bot(pieces=split_words(generated), generator_handoff_reply=MODEL_HANDOFF)
    conversation_id = await bot.start()
    events, reply = await bot.send(conversation_id, "How do I return boots?")

    assert reply.outcome is Outcome.HANDOFF and reply.handoff
    assert reply.text == EngineConfig().low_confidence_message
    assert reply.flags == (FlagReason.LOW_CONFIDENCE,)
    assert deltas_after_last_retraction(events) == reply.text
    retracted = [e for e in events if isinstance(e, ReplyRetracted)]
    assert bool(retracted) is shown_first  # the sentence alone is never shown, even in part
    (flag,) = await list_flags(bot.store)
    assert "handed off" in flag.detail
    assert (await bot.store.get_conversation(conversation_id)).state is ConversationState.HUMAN
    bot_turn = (await bot.engine.history(conversation_id))[-1]
    assert (bot_turn.outcome, bot_turn.model_version) == (Outcome.HANDOFF, None)
    assert bot.generator is not None
    assert bot.generator.closed_early is generated.endswith("nice day!")


async def test_a_reply_that_only_starts_like_the_handoff_sentence_is_an_answer(
    make_bot: MakeBot,
) -> None:
    answer = "I'm not sure the boots fit? Unworn items can be returned within 30 days, KB-RET-01."
    bot = make_bot(pieces=split_words(answer), generator_handoff_reply=MODEL_HANDOFF)
    events, reply = await bot.send(await bot.start(), "How do I return boots?")
    assert reply.outcome is Outcome.GENERATED and reply.text == answer
    assert "".join(e.text for e in events if isinstance(e, ReplyDelta)) == answer
    assert not any(isinstance(e, ReplyRetracted) for e in events)
    assert await list_flags(bot.store) == []


async def test_empty_retrieval_hands_off_politely(make_bot: MakeBot) -> None:
    bot = make_bot(answers=[])
    _, reply = await bot.send(await bot.start(), "Do you sell kayaks?")
    assert reply.outcome is Outcome.HANDOFF
    assert reply.text == EngineConfig().empty_retrieval_message
    assert reply.flags == (FlagReason.LOW_CONFIDENCE,)


async def test_a_broken_retriever_hands_off_instead_of_failing(
    make_bot: MakeBot, caplog: pytest.LogCaptureFixture
) -> None:
    bot = make_bot(retriever=FakeRetriever(error=RuntimeError("index not loaded")))
    with caplog.at_level(logging.ERROR, logger="bot.core.engine"):
        _, reply = await bot.send(await bot.start(), "Where is my order?")
    assert reply.outcome is Outcome.HANDOFF
    assert "retrieval failed" in caplog.text


async def test_customer_asks_for_a_person_and_an_operator_hands_back(make_bot: MakeBot) -> None:
    bot = make_bot()
    conversation_id = await bot.start()
    reply = await bot.engine.request_handoff(conversation_id)
    assert (reply.outcome, reply.text) == (Outcome.HANDOFF, EngineConfig().handoff_message)
    (flag,) = await list_flags(bot.store)
    assert (flag.reason, flag.detail) == (FlagReason.HANDOFF, "customer_request")
    with pytest.raises(ConversationHandedOff):
        await bot.engine.request_handoff(conversation_id)

    agent_turn = await bot.engine.add_agent_turn(conversation_id, "Hi, Sam here. Which boots?")
    assert agent_turn.role == "agent"
    await bot.engine.hand_back(conversation_id)
    assert (await bot.store.get_conversation(conversation_id)).state is ConversationState.BOT

    _, answer = await bot.send(conversation_id, "The Ridge boots, how do I return them?")
    assert answer.outcome is Outcome.GENERATED
    # The operator's message is history; the hand-off notice is left out as boilerplate.
    assert bot.retriever.calls[-1].history == (Message("agent", "Hi, Sam here. Which boots?"),)


async def test_an_operator_writing_takes_the_conversation_over(make_bot: MakeBot) -> None:
    bot = make_bot()
    conversation_id = await bot.start()
    await bot.engine.add_agent_turn(conversation_id, "Hello from the support team!")
    with pytest.raises(ConversationHandedOff):
        await bot.engine.reply(IncomingMessage(conversation_id, "hi"))


async def test_a_customer_writing_to_a_closed_conversation_reopens_it(make_bot: MakeBot) -> None:
    bot = make_bot()
    conversation_id = await bot.start()
    await bot.store.set_state(conversation_id, ConversationState.CLOSED)
    _, reply = await bot.send(conversation_id, "One more thing: how do I return boots?")
    assert reply.outcome is Outcome.GENERATED
    assert (await bot.store.get_conversation(conversation_id)).state is ConversationState.BOT


def test_settings_name_an_inconsistent_value_and_where_a_merged_one_went(tmp_path: Path) -> None:
    from bot.settings import load_settings

    with pytest.raises(ValueError, match=r"retrieved_k \(6\) cannot exceed retrieval.top_k \(5\)"):
        load_settings(home=tmp_path, generator={"retrieved_k": 6})
    # Twins merged (issue 17): the engine reads retrieval's and the generator's settings.
    for old, new in (
        ("evidence_k", "generator.retrieved_k"),
        ("retrieval_k", "retrieval.top_k"),
        ("max_new_tokens", "generator.max_new_tokens"),
    ):
        with pytest.raises(ValueError, match=rf"engine.{old} was merged into {new}"):
            EngineConfig.model_validate({old: 3})
    with pytest.raises(ValueError, match=r"retrieval_k \(1\) must be two at least"):
        ConversationEngine(FakeRetriever(), None, None, EngineConfig(), str, retrieval_k=1)  # type: ignore[arg-type]


# -- generator failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "retracted"),
    [
        ({"fail_after": 0}, False),  # ModelUnavailable before any text
        ({"fail_after": 4, "error": RuntimeError("CUDA out of memory")}, True),
        ({"stall_after": 3}, True),  # a stuck worker
        ({"pieces": ["   ", "\n"]}, False),  # nothing but whitespace
    ],
)
async def test_a_failing_generator_falls_back_to_copying(
    make_bot: MakeBot,
    caplog: pytest.LogCaptureFixture,
    failure: dict[str, Any],
    retracted: bool,
) -> None:
    pieces = failure.pop("pieces", split_words(GROUNDED))
    bot = make_bot(generator=FakeGenerator(pieces, **failure), generation_timeout_s=0.2)
    conversation_id = await bot.start()
    with caplog.at_level(logging.WARNING, logger="bot.core.engine"):
        events, reply = await bot.send(conversation_id, "How do I return boots?")
    assert reply.outcome is Outcome.COPIED
    assert reply.text == RETURNS.agent_reply == deltas_after_last_retraction(events)
    assert reply.flags == ()  # a model outage is logged, not queued for review
    assert "generation failed" in caplog.text
    retractions = [e for e in events if isinstance(e, ReplyRetracted)]
    assert retractions == ([ReplyRetracted(reason=None)] if retracted else [])
    # The conversation goes on normally.
    assert (await bot.store.get_conversation(conversation_id)).state is ConversationState.BOT


# -- history -------------------------------------------------------------------------------


async def test_history_reaches_retrieval_and_generation(make_bot: MakeBot) -> None:
    bot = make_bot(max_history_messages=3)
    conversation_id = await bot.start()
    await bot.send(conversation_id, "I bought boots last week")
    await bot.send(conversation_id, "They are too small")
    await bot.send(conversation_id, "ok and how long do I have?")

    expected = (
        Message("bot", GROUNDED),
        Message("customer", "They are too small"),
        Message("bot", GROUNDED),
    )
    assert bot.retriever.calls[-1].history == expected
    assert bot.retriever.calls[-1].customer_text == "ok and how long do I have?"
    assert bot.generator is not None
    request = bot.generator.requests[-1]
    assert (request.history, request.customer_text) == (expected, "ok and how long do I have?")
    assert request.evidence == (RETURNS, SHIPPING)
    assert bot.retriever.calls[0].history == ()


# -- input checks and PII -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "empty"), ("  \n\t ", "empty"), ("\x00\x07", "empty"), ("x" * 2001, "limit is 2000")],
)
async def test_invalid_messages_are_refused_before_anything_is_stored(
    make_bot: MakeBot, text: str, reason: str
) -> None:
    bot = make_bot()
    conversation_id = await bot.start()
    with pytest.raises(InvalidMessage, match=reason):
        await bot.engine.reply(IncomingMessage(conversation_id, text))
    assert await bot.engine.history(conversation_id) == []
    assert bot.retriever.calls == []


async def test_control_characters_are_stripped_and_the_limit_is_inclusive(
    make_bot: MakeBot,
) -> None:
    bot = make_bot(max_message_chars=20)
    conversation_id = await bot.start()
    await bot.send(conversation_id, "\x1b[31mboots\x00 return?\r\n")
    await bot.send(conversation_id, "y" * 20)
    turns = await bot.engine.history(conversation_id)
    assert [t.text for t in turns if t.role == "customer"] == ["[31mboots return?", "y" * 20]


async def test_an_unknown_conversation_is_reported(make_bot: MakeBot) -> None:
    bot = make_bot()
    with pytest.raises(ConversationNotFound):
        await bot.engine.reply(IncomingMessage("no-such-conversation", "hello"))
    with pytest.raises(ConversationNotFound):
        await bot.engine.request_handoff("no-such-conversation")


async def test_personal_data_is_scrubbed_before_it_is_stored_or_searched(
    make_bot: MakeBot,
) -> None:
    bot = make_bot()
    conversation_id = await bot.start()
    text = "I'm jane.doe@example.com, call +1 415 555 0132, card 4111 1111 1111 1111. Return?"
    await bot.send(conversation_id, text)

    stored = (await bot.engine.history(conversation_id))[0].text
    for secret in ("jane.doe@example.com", "415 555 0132", "4111 1111 1111 1111"):
        assert secret not in stored
        assert secret not in bot.retriever.calls[0].customer_text
    assert "[EMAIL]" in stored and "[PHONE]" in stored and "[CARD]" in stored
    assert bot.generator is not None
    assert bot.generator.requests[0].customer_text == stored


# -- ratings and corrections ----------------------------------------------------------------------


async def test_ratings_are_stored_and_complaints_flagged(make_bot: MakeBot) -> None:
    bot = make_bot()
    web = await bot.start("web")
    slack = await bot.start("slack")
    _, web_reply = await bot.send(web, "How do I return boots?")
    _, slack_reply = await bot.send(slack, "How do I return boots?")

    await bot.engine.rate(Rating(web_reply.turn_id, "up"))
    assert await list_flags(bot.store) == []
    await bot.engine.rate(Rating(web_reply.turn_id, "down", "Mail me at jo@example.org"))
    await bot.engine.rate(Rating(slack_reply.turn_id, "down", channel="slack"))

    stored = await get_rating(bot.store, web_reply.turn_id)
    assert stored == Rating(web_reply.turn_id, "down", "Mail me at [EMAIL]", "web")
    flags = await list_flags(bot.store)
    assert [(f.turn_id, f.reason) for f in flags] == [
        (web_reply.turn_id, FlagReason.THUMBS_DOWN),
        (slack_reply.turn_id, FlagReason.NOT_HELPFUL),
    ]
    assert flags[0].detail == "Mail me at [EMAIL]"

    customer_turn = (await bot.engine.history(web))[0]
    with pytest.raises(InvalidMessage):
        await bot.engine.rate(Rating(customer_turn.id, "up"))
    with pytest.raises(TurnNotFound):
        await bot.engine.rate(Rating("no-such-turn", "up"))


async def test_a_correction_is_served_instead_of_the_logs(make_bot: MakeBot) -> None:
    retriever = FakeRetriever.from_pairs(
        [
            ("can I pay with paypal", "We accept cards only."),
            ("when will my order arrive", "Standard shipping takes 3-5 business days."),
        ]
    )
    bot = make_bot(retriever=retriever, answer_mode="copy", confidence_threshold=0.5)
    conversation_id = await bot.start()
    _, wrong = await bot.send(conversation_id, "can I pay with paypal please")
    assert wrong.text == "We accept cards only."
    await bot.engine.rate(Rating(wrong.turn_id, "down"))

    correction = await bot.engine.correct(
        wrong.turn_id, "Yes, PayPal is accepted at checkout.", created_by="ana"
    )
    assert correction.question == "can I pay with paypal please"
    assert retriever.curated == [
        (correction.source_id, correction.question, "Yes, PayPal is accepted at checkout.", ())
    ]
    assert await list_flags(bot.store) == []  # the complaint is resolved as corrected
    (resolved,) = await list_flags(bot.store, FlagStatus.CORRECTED)
    assert resolved.resolved_by == "ana"

    _, fixed = await bot.send(await bot.start(), "can I pay with paypal please")
    assert fixed.text == "Yes, PayPal is accepted at checkout."
    assert fixed.sources[0].kind == "curated"
    assert fixed.sources[0].source_id == correction.source_id


async def test_an_edited_correction_is_served_as_edited_and_a_withdrawn_one_not_at_all(
    make_bot: MakeBot,
) -> None:
    retriever = FakeRetriever.from_pairs([("can I pay with paypal", "We accept cards only.")])
    bot = make_bot(retriever=retriever, answer_mode="copy", confidence_threshold=0.5)
    _, wrong = await bot.send(await bot.start(), "can I pay with paypal please")
    correction = await bot.engine.correct(wrong.turn_id, "<b>test</b>", created_by="ana")

    edited = await bot.engine.edit_correction(
        correction.id, "Yes, PayPal is accepted at checkout.", edited_by="bo"
    )
    assert (edited.question, edited.edited_by) == (correction.question, "bo")
    _, reply = await bot.send(await bot.start(), "can I pay with paypal please")
    assert reply.text == "Yes, PayPal is accepted at checkout."
    assert [s.source_id for s in retriever.knowledge].count(correction.source_id) == 1

    # A new question is scrubbed like the customer's and served for its own wording.
    await bot.engine.edit_correction(
        correction.id, "PayPal works.", edited_by="bo", question="paypal ok? mail a@b.example"
    )
    stored = await bot.store.get_correction(correction.id)
    assert (stored.question, stored.answer) == ("paypal ok? mail [EMAIL]", "PayPal works.")

    withdrawn = await bot.engine.withdraw_correction(correction.id, withdrawn_by="cy")
    assert withdrawn.withdrawn and withdrawn.withdrawn_by == "cy"
    assert retriever.removed == [correction.source_id]
    _, after = await bot.send(await bot.start(), "can I pay with paypal please")
    assert after.text == "We accept cards only."  # the logs again, not the withdrawn text
    assert all(s.kind != "curated" for s in after.sources)

    again = await bot.engine.withdraw_correction(correction.id, withdrawn_by="dee")
    assert (again.withdrawn_by, again.withdrawn_at) == ("cy", withdrawn.withdrawn_at)
    with pytest.raises(InvalidMessage, match="withdrawn"):
        await bot.engine.edit_correction(correction.id, "back again", edited_by="bo")
    with pytest.raises(CorrectionNotFound):
        await bot.engine.withdraw_correction(correction.id + 100, withdrawn_by="cy")
    with pytest.raises(InvalidMessage):
        await bot.engine.edit_correction(correction.id, "  ", edited_by="bo")


async def test_one_correction_covers_the_questions_the_operator_attaches(
    make_bot: MakeBot,
) -> None:
    retriever = FakeRetriever.from_pairs(
        [
            ("can I pay with paypal", "We accept cards only."),
            ("is paypal ok for paying", "We accept cards only."),
            ("paying by bank transfer possible", "We accept cards only."),
            ("when will my order arrive", "Standard shipping takes 3-5 business days."),
        ]
    )
    bot = make_bot(retriever=retriever, answer_mode="copy", confidence_threshold=0.5)
    _, wrong = await bot.send(await bot.start(), "can I pay with paypal please")
    better = "Yes, PayPal is accepted at checkout."
    correction = await bot.engine.correct(wrong.turn_id, better, created_by="ana")

    # A paraphrase still gets the logged answer: the correction covers one wording.
    _, before = await bot.send(await bot.start(), "is paypal ok for paying")
    assert before.text == "We accept cards only."

    # The customers who got the same wrong answer are offered, this one first; the
    # shipping question shares no words and is not.
    suggested = await bot.engine.suggest_questions(correction.id)
    texts = [q.text for q in suggested]
    assert texts[0] == "is paypal ok for paying"
    assert "is paypal ok for paying" in texts and "when will my order arrive" not in texts
    assert all(q.got_wrong_answer for q in suggested)

    attached = await bot.engine.attach_questions(
        correction.id, ["is paypal ok for paying", "is paypal ok for paying"], attached_by="bo"
    )
    assert [(a.source_id, a.question) for a in attached] == [
        (f"{correction.source_id}:1", "is paypal ok for paying")
    ]
    assert "is paypal ok for paying" not in [
        q.text for q in await bot.engine.suggest_questions(correction.id)
    ]
    _, after = await bot.send(await bot.start(), "is paypal ok for paying")
    assert after.text == better

    # Editing the correction changes the answer of every question it covers.
    await bot.engine.edit_correction(correction.id, "PayPal works.", edited_by="bo")
    _, edited = await bot.send(await bot.start(), "is paypal ok for paying")
    assert edited.text == "PayPal works."

    # A question another correction answers differently is refused, naming that one.
    _, other = await bot.send(await bot.start(), "when will my order arrive")
    shipping = await bot.engine.correct(other.turn_id, "Orders ship in 24 hours.", created_by="cy")
    with pytest.raises(QuestionTaken, match=re.escape(correction.source_id)):
        await bot.engine.attach_questions(
            shipping.id,
            ["paying by bank transfer possible", "is paypal ok for paying"],
            attached_by="cy",
        )
    assert await bot.store.attached_questions(shipping.id) == []  # all or nothing

    # Withdrawing the correction stops serving all of its questions.
    await bot.engine.withdraw_correction(correction.id, withdrawn_by="cy")
    assert set(retriever.removed) == {correction.source_id, f"{correction.source_id}:1"}
    _, withdrawn = await bot.send(await bot.start(), "is paypal ok for paying")
    assert withdrawn.text == "We accept cards only."
    with pytest.raises(InvalidMessage, match="withdrawn"):
        await bot.engine.attach_questions(correction.id, ["paypal?"], attached_by="bo")
    # Once withdrawn, its questions are free for another answer.
    await bot.engine.attach_questions(shipping.id, ["is paypal ok for paying"], attached_by="cy")


async def test_questions_can_be_attached_when_correcting(make_bot: MakeBot) -> None:
    retriever = FakeRetriever.from_pairs([("can I pay with paypal", "We accept cards only.")])
    bot = make_bot(retriever=retriever, answer_mode="copy", confidence_threshold=0.5)
    _, wrong = await bot.send(await bot.start(), "can I pay with paypal please")
    correction = await bot.engine.correct(
        wrong.turn_id,
        "PayPal works.",
        created_by="ana",
        also_questions=["paypal accepted? write to a@b.example"],
    )
    (attached,) = await bot.store.attached_questions(correction.id)
    assert attached.question == "paypal accepted? write to [EMAIL]"  # scrubbed as stored
    _, reply = await bot.send(await bot.start(), "paypal accepted? write to a@b.example")
    assert reply.text == "PayPal works."


@pytest.mark.parametrize("verbatim", [True, False])
async def test_an_operators_correction_is_sent_as_written_not_regenerated(
    make_bot: MakeBot, verbatim: bool
) -> None:
    corrected = source(
        "correction:1",
        "do you gift wrap",
        "Yes, gift wrapping costs 4 EUR (KB-9001).",
        kind="curated",
    )
    log = source("c-ret#1", "How do I return boots?", "Returns are free (KB-1001).", 0.5)
    bot = make_bot(
        [corrected, log],
        ["Hi", " hi", " hi"],
        curated_verbatim=verbatim,
        confidence_threshold=0.1,
    )
    _, reply = await bot.send(await bot.start(), "can you wrap my gift")
    if verbatim:
        assert reply.outcome is Outcome.COPIED
        assert reply.text == "Yes, gift wrapping costs 4 EUR (KB-9001)."
        assert bot.generator is not None and bot.generator.requests == []
    else:  # the model's fact-free text would have been sent instead
        assert reply.outcome is Outcome.GENERATED
        assert reply.text == "Hi hi hi"


async def test_a_correction_sent_while_unsure_is_reviewed_too(make_bot: MakeBot) -> None:
    # An operator's answer matched weakly may not answer this question: worth a look.
    corrected = source(
        "correction:1",
        "do you gift wrap",
        "Yes, gift wrapping costs 4 EUR (KB-9001).",
        kind="curated",
    )
    question = "can you wrap my gift"
    sure_bot = make_bot([corrected])
    _, sure = await sure_bot.send(await sure_bot.start(), question)
    bot = make_bot([corrected], confidence_threshold=threshold_for(sure.confidence, "low"))
    _, reply = await bot.send(await bot.start(), question)
    assert (reply.outcome, reply.text) == (Outcome.COPIED, corrected.agent_reply)
    assert reply.certainty == "low"
    [flag] = await list_flags(bot.store)
    assert flag.reason is FlagReason.UNSURE and "correction:1" in flag.detail


# -- with the real knowledge base -----------------------------------------------------------------


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrieval")
    yield pool
    pool.shutdown(wait=True)


async def test_knowledge_base_answers_and_prefers_corrections(
    tmp_path: Path,
    make_knowledge: Callable[..., Any],
    executor: ThreadPoolExecutor,
) -> None:
    from retrieval.ingest import ingest_paths
    from tests.support.corpus import SMALL_LOGS, write_jsonl

    kb = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], kb)  # type: ignore[arg-type]
    retriever = KnowledgeRetriever(kb, executor)
    store = ConversationDatabase(tmp_path / "bot.db")
    engine = ConversationEngine(
        retriever, None, store, EngineConfig(), scrub_text, curator=retriever
    )
    try:
        conversation = await engine.start_conversation("web")
        first = await engine.reply(IncomingMessage(conversation.id, "Do gift cards expire?"))
        assert first.outcome is Outcome.COPIED
        assert first.sources[0].source_id == "c-gift#1"
        assert "never expire" in first.text

        correction = await engine.correct(
            first.turn_id,
            "Gift cards never expire, and the balance shows on your account page.",
            created_by="ana",
        )
        again = await engine.start_conversation("web")
        second = await engine.reply(IncomingMessage(again.id, "Do gift cards expire?"))
        assert second.sources[0].source_id == correction.source_id
        assert second.sources[0].kind == "curated"
        assert "account page" in second.text

        # A question the logs say nothing about is handed to a person.
        other = await engine.start_conversation("web")
        unknown = await engine.reply(IncomingMessage(other.id, "What's the capital of Peru?"))
        assert unknown.outcome is Outcome.HANDOFF
        bot_turn = (await engine.history(conversation.id))[1]
        assert bot_turn.index_version == retriever.version is not None
    finally:
        await store.aclose()


async def test_a_withdrawn_correction_leaves_the_knowledge_base_and_stays_out_after_a_restart(
    tmp_path: Path,
    make_knowledge: Callable[..., Any],
    executor: ThreadPoolExecutor,
) -> None:
    from retrieval.ingest import ingest_paths
    from tests.support.corpus import SMALL_LOGS, write_jsonl

    kb = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], kb)  # type: ignore[arg-type]
    retriever = KnowledgeRetriever(kb, executor)
    store = ConversationDatabase(tmp_path / "bot.db")
    engine = ConversationEngine(
        retriever, None, store, EngineConfig(), scrub_text, curator=retriever
    )

    async def ask(text: str) -> Any:
        conversation = await engine.start_conversation("web")
        return await engine.reply(IncomingMessage(conversation.id, text))

    try:
        first = await ask("Can I rent a camping stove?")
        mistake = await engine.correct(
            first.turn_id, '<img src=x onerror="alert(1)"> test', created_by="ana"
        )
        assert (await ask("Can I rent a camping stove?")).text.startswith("<img")

        edited = await engine.edit_correction(
            mistake.id,
            "Camping stoves rent for $12/day (KB-RNT-01).",
            edited_by="bo",
            question="Do you rent out camping stoves?",
        )
        assert "$12/day" in (await ask("do you rent camping stoves")).text
        curated = kb.store.live_entry_ids(kind="curated")
        assert len(curated) == 1  # edited in place: still one curated answer
        (entry,) = kb.store.entries_by_id(curated).values()
        assert entry.entry.customer_text == "Do you rent out camping stoves?"

        await engine.withdraw_correction(edited.id, withdrawn_by="cy")
        after = await ask("Do you rent out camping stoves?")
        assert after.outcome is Outcome.HANDOFF or "$12" not in after.text
        assert all(s.source_id != edited.source_id for s in after.sources)

        # A restart replays the removal: the next server does not serve it either, and the
        # next index version is built without it.
        restarted = make_knowledge()
        restarted.load()
        hits = restarted.search([], "Do you rent out camping stoves?", 5)
        assert all(h.source_id != edited.source_id for h in hits)
        assert restarted.store.live_entry_ids(kind="curated") == set()
        restarted.sync_index()
        assert all(
            h.source_id != edited.source_id
            for h in restarted.search([], "Do you rent out camping stoves?", 5)
        )
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    "gift_answer",
    [
        "Gift cards never expire (KB-GFT-01).",
        # An e-mail: sent without its sign-off, so the turns hold other text than the logs.
        "Hi Maria,\n\nGift cards never expire (KB-GFT-01).\n\nAll the best,\nKeiko",
    ],
    ids=["chat", "e-mail"],
)
async def test_the_knowledge_base_suggests_past_questions_and_serves_attached_ones(
    tmp_path: Path,
    make_knowledge: Callable[..., Any],
    executor: ThreadPoolExecutor,
    gift_answer: str,
) -> None:
    from retrieval.ingest import ingest_paths
    from tests.support.corpus import SMALL_LOGS, exchange, write_jsonl

    logs = [
        *(log for log in SMALL_LOGS if log["id"] != "c-gift"),
        exchange("c-gift", "Do gift cards expire?", gift_answer),
        exchange("c-gift2", "Is there an expiry date on gift cards?", gift_answer),
    ]
    kb = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", logs)], kb)  # type: ignore[arg-type]
    retriever = KnowledgeRetriever(kb, executor)
    store = ConversationDatabase(tmp_path / "bot.db")
    engine = ConversationEngine(
        retriever,
        None,
        store,
        EngineConfig(),
        scrub_text,
        curator=retriever,
        question_finder=retriever,
    )

    async def ask(text: str) -> Any:
        conversation = await engine.start_conversation("web")
        return await engine.reply(IncomingMessage(conversation.id, text))

    try:
        first = await ask("Do gift cards expire?")
        earlier = await ask("do giftcards ever expire")
        assert earlier.text == first.text  # a live customer who got the same answer
        assert "KB-GFT-01" in first.text and not first.text.endswith(",")
        better = "Gift cards expire after 5 years; the date is on the back (KB-GFT-02)."
        correction = await engine.correct(first.turn_id, better, created_by="ana")

        suggested = await engine.suggest_questions(correction.id)
        found = {q.text: q for q in suggested}
        assert found["do giftcards ever expire"].origin == "conversation"
        assert found["Is there an expiry date on gift cards?"].origin == "log"
        assert found["Is there an expiry date on gift cards?"].got_wrong_answer
        assert "Do gift cards expire?" not in found  # the corrected question itself
        assert [q.score for q in suggested] == sorted((q.score for q in suggested), reverse=True)

        await engine.attach_questions(
            correction.id, ["Is there an expiry date on gift cards?"], attached_by="ana"
        )
        assert (await ask("Is there an expiry date on gift cards?")).text == better
        await engine.withdraw_correction(correction.id, withdrawn_by="ana")
        assert kb.store.live_entry_ids(kind="curated") == set()
    finally:
        await store.aclose()


# -- a message that only gives the customer's details --------------------------------------


async def test_details_given_first_are_asked_about_not_searched(make_bot: MakeBot) -> None:
    bot = make_bot()
    conversation_id = await bot.start()
    _, reply = await bot.send(conversation_id, "it's JO-771204")
    assert (reply.outcome, reply.text) == (Outcome.SMALL_TALK, EngineConfig().details_reply)
    assert not reply.handoff and reply.flags == ()
    assert bot.retriever.calls == []  # searched, it matched a reply about shipping times
    assert (await bot.store.get_conversation(conversation_id)).state is ConversationState.BOT
    # Told what it is about, the bot answers as usual.
    _, answer = await bot.send(conversation_id, "How do I return boots that are too small?")
    assert answer.outcome is Outcome.GENERATED


async def test_details_given_after_a_question_go_to_a_person(make_bot: MakeBot) -> None:
    bot = make_bot(details_handoff_message="Passed on with your details.")
    conversation_id = await bot.start()
    _, answer = await bot.send(conversation_id, "How do I return boots that are too small?")
    assert answer.outcome is Outcome.GENERATED
    _, reply = await bot.send(conversation_id, "order number JO-553201 thanks")
    assert (reply.outcome, reply.text) == (Outcome.HANDOFF, "Passed on with your details.")
    assert reply.handoff
    assert len(bot.retriever.calls) == 1  # the question only, never the details
    flags = [(f.reason, f.detail) for f in await list_flags(bot.store)]
    assert flags == [(FlagReason.HANDOFF, "customer_details")]
    assert (await bot.store.get_conversation(conversation_id)).state is ConversationState.HUMAN


async def test_details_are_searched_when_set_replies_are_off(make_bot: MakeBot) -> None:
    bot = make_bot(answer_small_talk=False)
    _, reply = await bot.send(await bot.start(), "it's JO-771204")
    assert reply.outcome is not Outcome.SMALL_TALK
    assert [c.customer_text for c in bot.retriever.calls] == ["it's JO-771204"]
