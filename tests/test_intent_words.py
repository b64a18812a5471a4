"""What a customer asks outweighs the product they name: intent words learned from the
logs, on a real knowledge base with the real embedder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from retrieval.ingest import ingest_paths
from retrieval.intent_words import fit_intent_words
from retrieval.knowledge import KnowledgeBase
from tests.support.corpus import exchange, write_jsonl

MakeKB = Callable[..., KnowledgeBase]

WASH = "Hand wash it in cold water with a gentle soap and let it air dry (KB-CARE-01)."
RETURN = "Unused items with tags can be returned within 30 days of delivery (KB-RET-01)."
RESTOCK = "We can't share restock dates; use 'Notify me' on the product page (KB-STK-01)."
PRICE = "We refund the difference if our price drops within 14 days (KB-PRC-01)."

# Every product is asked about for several reasons, in the same everyday words, as in a
# shop's logs: neither the product's name nor "my" or "can" says which answer is needed.
# No question about returns names the jacket, none about restocks the tent, none about
# prices the boots: the questions below must find the answer through what they ask.
PRODUCT_LOGS = [
    exchange("wash-1", "How should I wash my Stormline Rain Jacket?", WASH),
    exchange("wash-2", "Can I put the Cascade Tent in the washing machine?", WASH),
    exchange("wash-3", "What is the best way to wash my Talus Boots?", WASH),
    exchange("wash-4", "Can I wash the Basin Daypack?", WASH),
    exchange("ret-1", "How many days do I have to return my Cascade Tent?", RETURN),
    exchange("ret-2", "Can I return the Talus Boots?", RETURN),
    exchange("ret-3", "What is the return window for my Basin Daypack?", RETURN),
    exchange("stk-1", "When will the Stormline Rain Jacket be back in stock?", RESTOCK),
    exchange("stk-2", "Can I get the Basin Daypack, is it back in stock?", RESTOCK),
    exchange("stk-3", "Is my size of the Talus Boots back in stock?", RESTOCK),
    exchange("prc-1", "The price of my Stormline Rain Jacket dropped after I bought it", PRICE),
    exchange("prc-2", "Can I get the price difference on the Cascade Tent?", PRICE),
    exchange("prc-3", "The price of the Basin Daypack dropped, can I get the difference?", PRICE),
]


def test_words_that_name_a_product_weigh_nothing_and_words_that_ask_weigh_more() -> None:
    questions = [m["messages"][0]["text"] for m in PRODUCT_LOGS]  # type: ignore[index]
    replies = [m["messages"][1]["text"] for m in PRODUCT_LOGS]  # type: ignore[index]
    intent = fit_intent_words(questions, replies)
    assert intent is not None
    for product_word in ("stormline", "rain", "jacket", "cascade", "tent", "the", "my", "can"):
        assert intent.weights.get(product_word, 0.0) == 0.0
    for asking_word in ("wash", "return", "stock", "price"):
        assert intent.weights[asking_word] > 0.0
    # A past question that asks the same about another product shares all that is asked.
    assert intent.match("how do I return a rain jacket", "Can I return the boots?") == 1.0
    assert intent.match("how do I return a rain jacket", "How should I wash my rain jacket?") == 0


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("How long do I have to return a rain jacket?", RETURN),
        ("Will the Cascade Tent be back in stock?", RESTOCK),
    ],
)
def test_the_answer_to_what_is_asked_beats_the_answer_about_the_product_named(
    tmp_path: Path, make_knowledge: MakeKB, question: str, answer: str
) -> None:
    logs = write_jsonl(tmp_path / "logs.jsonl", PRODUCT_LOGS)
    with_intent = make_knowledge("with")
    ingest_paths([logs], with_intent)
    assert with_intent.search((), question, 3)[0].agent_reply == answer
    # What the tester saw without them: the answer about the product named (the washing
    # answer to a question about returning a jacket).
    without = make_knowledge("without", intent_words_weight=0.0)
    ingest_paths([logs], without)
    assert without.search((), question, 3)[0].agent_reply != answer


def test_the_top_score_is_how_near_its_question_is_and_the_scores_keep_the_order(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    # The confidence reads the score as how near the nearest past question is: a message
    # about something never answered ("is there a student discount?") shares intent
    # words with some past question, and a gain in the score would make it look answered.
    # The engine lists sources in the order of their scores.
    kb = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", PRODUCT_LOGS)], kb)
    question = "How long do I have to return a rain jacket?"
    hits = kb.search((), question, 3)
    top = hits[0]
    assert top.agent_reply == RETURN
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    query, past = kb.embedder.encode([question, top.customer_text])
    assert top.score == pytest.approx(float(query @ past), abs=1e-5)
