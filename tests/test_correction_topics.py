"""One correction for a topic (issue 20): which past customers a correction is offered for,
and how the questions attached to it compete with the logs, on the real embedder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.retrieval import KnowledgeRetriever
from bot.core.config import EngineConfig
from bot.core.engine import ConversationEngine
from bot.core.types import IncomingMessage, Reply
from bot.store.conversations import ConversationDatabase
from retrieval.confidence import ConfidenceWeights, retrieval_confidence, retrieval_features
from retrieval.pii import scrub
from retrieval.records import RetrievedExchange
from tests.support.corpus import exchange, write_jsonl

ARRIVAL_ANSWER = (
    "Cards arrive within 5 working days of ordering; track yours in the app (KB-CRD-01)."
)
LOST_ANSWER = "Freeze a lost or stolen card at once in the app under Card > Freeze (KB-CRD-02)."
EXPRESS_ANSWER = "Express card delivery takes 1 to 2 working days for a fee (KB-CRD-03)."
LOGS = [
    exchange("a1", "When will my card arrive?", ARRIVAL_ANSWER),
    exchange("a2", "My new card still hasn't arrived", ARRIVAL_ANSWER),
    exchange("a3", "How long until my card gets here?", ARRIVAL_ANSWER),
    exchange("a4", "I'm still waiting for my card to be delivered", ARRIVAL_ANSWER),
    exchange("l1", "I lost my card", LOST_ANSWER),
    exchange("l2", "My card was stolen", LOST_ANSWER),
    exchange("l3", "I can't find my card anywhere", LOST_ANSWER),
]
# Customers who asked about express delivery, which the logs never answered, and customers
# of the neighbouring topic (arrival), rightly answered.
EXPRESS = [
    "Can I get my card fast tracked?",
    "Is there express delivery for cards?",
    "Can you expedite my card?",
    "I need my card urgently, can you send it faster?",
    "I need my card now!",
]
ARRIVAL_CUSTOMERS = ["Where is my card? It still hasn't come", "My card has not been delivered yet"]


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrieval")
    yield pool
    pool.shutdown(wait=True)


def scrub_text(text: str) -> str:
    return scrub(text).text


@pytest.fixture
async def shop(
    tmp_path: Path, make_knowledge: Callable[..., Any], executor: ThreadPoolExecutor
) -> AsyncIterator[tuple[ConversationEngine, Any]]:
    """An engine over a real knowledge base of LOGS, answering with the best retrieved
    answer whatever its confidence."""
    from retrieval.ingest import ingest_paths

    kb = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", LOGS)], kb)
    retriever = KnowledgeRetriever(kb, executor)
    store = ConversationDatabase(tmp_path / "bot.db")
    engine = ConversationEngine(
        retriever,
        None,
        store,
        EngineConfig(confidence_threshold=0.0),
        scrub_text,
        curator=retriever,
        question_finder=retriever,
    )
    yield engine, kb
    await store.aclose()


async def ask(engine: ConversationEngine, text: str) -> Reply:
    conversation = await engine.start_conversation("web")
    return await engine.reply(IncomingMessage(conversation.id, text))


async def test_a_correction_is_offered_its_topics_customers_before_the_neighbours(
    shop: tuple[ConversationEngine, Any],
) -> None:
    engine, _ = shop
    got = {text: (await ask(engine, text)).text for text in [*EXPRESS, *ARRIVAL_CUSTOMERS]}
    wrong = await ask(engine, "Can I get my card delivered faster?")
    assert wrong.text == ARRIVAL_ANSWER
    correction = await engine.correct(wrong.turn_id, EXPRESS_ANSWER, created_by="ana")

    suggested = await engine.suggest_questions(correction.id)
    texts = [q.text for q in suggested]
    # The express customers come first, also one the bot gave another wrong answer (the
    # lost card's), which only the answers the corrected question retrieves lead to.
    assert set(texts[:4]) <= set(EXPRESS)
    otherwise = [t for t in texts[:4] if got[t] != ARRIVAL_ANSWER]
    assert otherwise and all(got[t] == LOST_ANSWER for t in otherwise)
    assert not next(q for q in suggested if q.text == otherwise[0]).got_wrong_answer
    # Ranked by fit, not by closeness: the neighbouring topic's customer lies closer to
    # the corrected question than express customers offered before it.
    neighbour = next(q for q in suggested if q.text == "My card has not been delivered yet")
    assert any(q.score < neighbour.score for q in suggested[:4])
    assert texts.index(neighbour.text) >= 4


# Questions an operator attached to the express correction: getting the card by a date.
ATTACHED = [
    "I need my card by Friday, can you send it faster?",
    "Can my card come before the weekend?",
    "Is there express delivery for cards?",
    "Can I get my card sooner?",
]


@pytest.mark.parametrize("corroboration", [0.0, 0.03])
def test_a_question_amid_several_attached_ones_gets_the_correction(
    tmp_path: Path, make_knowledge: Callable[..., Any], corroboration: float
) -> None:
    from retrieval.ingest import ingest_paths

    kb = make_knowledge(curated_bonus=0.0, curated_corroboration=corroboration)
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", LOGS)], kb)
    kb.add_curated("correction:1", "Can I get my card delivered faster?", EXPRESS_ANSWER)
    for n, question in enumerate(ATTACHED, start=1):
        kb.add_curated(f"correction:1:{n}", question, EXPRESS_ANSWER)

    def answer(text: str) -> str:
        return kb.search((), text, 3)[0].agent_reply

    # A logged arrival question lies a little nearer than any one attached question, but
    # three of them lie about as near: together they say whose topic it is.
    asked = "I'd like to get my card by tomorrow?"
    assert answer(asked) == (EXPRESS_ANSWER if corroboration else ARRIVAL_ANSWER)
    # The neighbouring topic's customers do not get it: they lie by their own logs.
    for text in ARRIVAL_CUSTOMERS:
        assert answer(text) != EXPRESS_ANSWER


def test_a_corrections_bonus_is_shared_by_its_questions_near_the_message(
    tmp_path: Path, make_knowledge: Callable[..., Any]
) -> None:
    from retrieval.ingest import ingest_paths

    kb = make_knowledge(curated_bonus=0.06, curated_corroboration=0.0)
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", LOGS)], kb)
    asked = "Can my card be delivered sooner?"
    kb.add_curated("correction:1", "Can I get my card delivered faster?", EXPRESS_ANSWER)

    def curated_hit() -> tuple[float, str]:
        hit = next(h for h in kb.search((), asked, 3) if h.agent_reply == EXPRESS_ANSWER)
        return hit.score, hit.customer_text

    def closeness(question: str) -> float:
        vectors = kb.embedder.encode([asked, question])
        return float(vectors[0] @ vectors[1])

    # Alone, the correction gets the whole bonus, to reach paraphrases of its question.
    score, question = curated_hit()
    assert score == pytest.approx(closeness(question) + 0.06, abs=1e-5)
    # With three of its questions among the nearest hits each gets a third: they cover
    # their topic by closeness, and a whole bonus on each would reach into the next one.
    for n, attached in enumerate(ATTACHED[:2], start=1):
        kb.add_curated(f"correction:1:{n}", attached, EXPRESS_ANSWER)
    score, question = curated_hit()
    assert score == pytest.approx(closeness(question) + 0.02, abs=1e-5)


def test_a_correction_that_wins_a_message_only_by_its_bonus_is_not_sure_of_it(
    tmp_path: Path, make_knowledge: Callable[..., Any]
) -> None:
    from retrieval.ingest import ingest_paths

    kb = make_knowledge()  # the default bonus and corroboration
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", LOGS)], kb)
    kb.add_curated("correction:1", "Can I get my card delivered faster?", EXPRESS_ANSWER)
    for n, question in enumerate(ATTACHED, start=1):
        kb.add_curated(f"correction:1:{n}", question, EXPRESS_ANSWER)
    # Weights as calibration fits them where the answer classifier has a say, which the
    # curated answer's own evidence takes for a correction.
    weights = ConfidenceWeights(
        bias=-5.0, score=6.0, margin=4.0, support=0.0, answer_probability=3.0
    )

    def served(text: str) -> tuple[str, float, float | None, RetrievedExchange]:
        hits = kb.search((), text, 3)
        features = retrieval_features(hits)
        assert features is not None
        confidence = retrieval_confidence(hits, weights)
        return hits[0].agent_reply, confidence, features.answer_probability, hits[0]

    # Amid the questions the operator attached: several lie nearer than any logged one.
    reply, amid, amid_evidence, top = served("Can I pay to get my card quicker?")
    assert reply == EXPRESS_ANSWER and amid_evidence is not None and amid_evidence > 0.8
    # Between them and the arrival topic: a logged arrival question lies nearer than any
    # of them, and the bonus still serves the correction. It is no surer of it than of one
    # question: the bonus is the operator's word for the topic, not evidence that this
    # message is in it.
    reply, between, between_evidence, near_top = served("I'd like to get my card by tomorrow?")
    assert (reply, between_evidence) == (EXPRESS_ANSWER, 0.5)
    assert between < amid - 0.1
    assert near_top.nearer_questions == 0
    assert top.nearer_questions is not None and top.nearer_questions >= 3
