"""What the served (embedder, index) pair achieves on the logs' own validation split.

The live messages are labelled with the answer each got, their replies grouped into reply
clusters, and a validation share of conversations and a few held-out topics set aside
(retrieval/tuning_data.py). :func:`measure` searches the validation messages (top-1,
recall@5) and fits the hand-off trade-off with the held-out topics standing in for
questions the logs do not cover. ``supportbot train`` (retrieval/training.py) and the
embedder step of a retraining cycle (retrieval/embedder_retraining.py) both judge a pair
by these figures.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from retrieval.calibration import (
    Calibration,
    answers_match,
    generic_off_topic_features,
    save_calibration,
    signals_used,
    trade_off_table,
)
from retrieval.claims import withheld_best
from retrieval.confidence import (
    CalibrationCase,
    CalibrationResult,
    ConfidenceFeatures,
    calibrate,
    retrieval_features,
)
from retrieval.config import TuningConfig
from retrieval.knowledge import KnowledgeBase, Query
from retrieval.pacing import Pace, while_time_allows
from retrieval.records import RetrievedExchange, follows_a_reply
from retrieval.small_talk import answered_with_set_reply
from retrieval.store import text_hash
from retrieval.tuning_data import (
    LabelledMessage,
    TuningSplit,
    cluster_replies,
    normalise_reply,
    split_for_tuning,
)
from retrieval.verifier import HeldOut

log = logging.getLogger(__name__)

_MAX_OUT_OF_SCOPE_QUERIES = 1000
# Questions searched between two reads of the clock when a deadline bounds :func:`measure`:
# seconds of work on two busy cores. Embedding is batched by length, so smaller rounds cost
# more: the sample's 445 questions took 8-10 s at once, +60% in rounds of 64, +20% of 128,
# +3% of 256 (issue 19).
_ROUND = 256
# Replies embedded between two reads of the clock when clustering has a deadline: about 5
# times as long as a question (the sample's 1,363 took 74-128 s on two busy cores).
_REPLY_CHUNK = 128


@dataclass(frozen=True)
class Searched:
    """How many questions of each kind :func:`measure` searched, of those there were: fewer
    when its deadline stopped it, and its figures and fit are then those of the ones searched."""

    validation: int
    validation_questions: int
    held_out: int  # messages of the held-out topics, standing in for out-of-scope questions
    held_out_questions: int
    rounds: int  # of searches (see measure): the same count searches the same questions

    @property
    def cut(self) -> bool:
        return (self.validation, self.held_out) != (
            self.validation_questions,
            self.held_out_questions,
        )

    def sentence(self) -> str:
        return (
            f"{self.validation} of {self.validation_questions} validation and {self.held_out}"
            f" of {self.held_out_questions} held-out-topic questions searched"
        )


@dataclass(frozen=True)
class RetrievalFigures:
    """What the served pair achieves on the validation split."""

    top1: float
    recall_at_5: float
    calibration: CalibrationResult | None  # None when no held-out topic could be formed
    embedder_id: str
    index_version: int | None
    # What other hand-off targets give with the same weights (see trade_off_table).
    trade_offs: list[dict[str, Any]] = field(default_factory=list)
    searched: Searched | None = None  # None: not recorded (every question was searched)
    # What measuring took: for a caller to keep that much time to measure another pair on
    # the same questions, and to foresee embedding entries (a question is an entry's text,
    # embedded and searched in its slowest round). Not figures: row() leaves them out.
    seconds: float = 0.0
    seconds_per_question: float = 0.0
    # Whether the reply verifier's say entered the fit: only one trained without these
    # questions' conversations (None: no verifier was served).
    verified: bool | None = None

    def row(self) -> dict[str, Any]:
        result = self.calibration
        return {
            "top1": round(self.top1, 4),
            "recall_at_5": round(self.recall_at_5, 4),
            "threshold": round(result.threshold, 4) if result else None,
            "handoff_recall": round(result.handoff_recall, 4) if result else None,
            "generic_handoff_recall": (
                round(result.generic_handoff_recall, 4)
                if result and result.generic_handoff_recall is not None
                else None
            ),
            "in_scope_answered": round(result.answered_rate, 4) if result else None,
            "answered_accuracy": round(result.answered_accuracy, 4) if result else None,
            "wrong_answer_rate": round(result.wrong_answer_rate, 4) if result else None,
            "signals": signals_used(result.weights) if result else None,
            "searched": asdict(self.searched) if self.searched else None,
        }


def labelled_messages(knowledge: KnowledgeBase) -> list[LabelledMessage]:
    """Every live customer message with the answer it got (logs and corrections)."""
    stored = knowledge.store.entries_by_id(knowledge.store.live_entry_ids())
    return [
        LabelledMessage(
            entry_id=entry_id,
            conversation_id=item.entry.conversation_id,
            text=item.entry.embed_text,
            reply=item.entry.agent_reply,
            kind=item.entry.kind,
            after_answer=follows_a_reply(item.entry.context),
        )
        for entry_id, item in sorted(stored.items())
    ]


@dataclass
class ReplyEncoding:
    """How many of the distinct replies clustered got a vector (cached, or embedded by the
    deadline); the others were merged only with identical ones."""

    replies: int = 0
    embedded: int = 0

    @property
    def cut(self) -> bool:
        return self.embedded < self.replies


def tuning_split(
    knowledge: KnowledgeBase,
    config: TuningConfig,
    *,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    encoding: ReplyEncoding | None = None,
    progress: bool = False,
) -> tuple[list[LabelledMessage], TuningSplit]:
    """The live messages and their split for tuning: replies clustered by meaning (the
    served embedder's), validation conversations and held-out topics set aside.

    The replies' vectors are cached in the store (the next job finds them); those missing
    are embedded by ``deadline`` (a ``clock()`` instant; None: all), in chunks of
    :data:`_REPLY_CHUNK` in a seeded order, and a reply left without one is merged only with
    identical replies. ``encoding``, when given, receives the counts; ``progress`` shows a
    bar over the replies embedded (on two cores, a minute for the sample's 1,400).
    """
    messages = labelled_messages(knowledge)
    counts = encoding if encoding is not None else ReplyEncoding()
    clusters = cluster_replies(
        [m.reply for m in messages],
        _reply_vectors(knowledge, config.seed, deadline, clock, counts, progress),
        merge_similarity=config.reply_merge_similarity,
    )
    split = split_for_tuning(
        messages,
        clusters,
        validation_share=config.validation_share,
        held_out_topic_share=config.held_out_topic_share,
        seed=config.seed,
    )
    return messages, split


def _reply_vectors(
    knowledge: KnowledgeBase,
    seed: int,
    deadline: float | None,
    clock: Callable[[], float],
    counts: ReplyEncoding,
    progress: bool = False,
) -> Callable[[Sequence[str]], np.ndarray]:
    """An ``encode`` for :func:`cluster_replies` (see :func:`tuning_split`): rows of zeros
    for the texts it had no time for, which merge with nothing."""

    def encode(texts: Sequence[str]) -> np.ndarray:
        embedder, store = knowledge.embedder, knowledge.store
        hashes = [text_hash(text) for text in texts]
        cached = store.cached_vectors(hashes, embedder.model_id)
        todo = [i for i, digest in enumerate(hashes) if digest not in cached]
        random.Random(seed).shuffle(todo)
        chunks = math.ceil(len(todo) / _REPLY_CHUNK)
        bar = tqdm(total=len(todo), desc="embed replies", unit="reply", disable=not progress)
        with bar:
            for n in while_time_allows(chunks, deadline, clock, first_always=False):
                chunk = todo[n * _REPLY_CHUNK : (n + 1) * _REPLY_CHUNK]
                vectors = embedder.encode([texts[i] for i in chunk])
                pairs = [(hashes[i], v) for i, v in zip(chunk, vectors, strict=True)]
                store.cache_vectors(pairs, embedder.model_id)
                cached.update(pairs)
                bar.update(len(chunk))
        vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
        for i, digest in enumerate(hashes):
            if digest in cached:
                vectors[i] = cached[digest]
        counts.replies, counts.embedded = len(texts), sum(h in cached for h in hashes)
        if counts.cut:
            log.info(
                "clustering: %d of %d replies embedded by the deadline", counts.embedded, len(texts)
            )
        return vectors

    return encode


def measure(
    knowledge: KnowledgeBase,
    split: TuningSplit,
    config: TuningConfig,
    *,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    progress: bool = False,
    max_rounds: int | None = None,
    withhold_claims: bool = True,
) -> RetrievalFigures:
    """Search the validation messages and held-out-topic messages in the served index, and
    fit the hand-off trade-off on what they retrieved.

    With ``withhold_claims`` (the engine's ``hand_off_claimed_actions``, which the caller
    passes), a question whose best answer is a logged reply that claims an action or states
    that customer's case counts as handed off, as the engine hands it off
    (:func:`retrieval.claims.withheld_best`); without it, the engine copies that reply, and
    it counts as answered.

    The searches exclude those messages' conversations, and the answer classifier is
    refitted without them: both must see these questions as new ones. With ``deadline``
    (a ``clock()`` instant; None: none) the questions are searched in rounds of about
    :data:`_ROUND` (each kind's share of a round in a seeded order, so that the questions
    reached are spread over the topics, and a count of rounds always means the same
    questions), and a round starts only while it is expected to end before the deadline
    (timed as the slowest so far; the first one always runs); the figures and the fit are
    then those of the questions searched, whose counts the result reports. ``max_rounds``
    stops it after that many rounds (another pair measured on the same questions);
    ``progress`` shows a bar over the questions.
    """
    began = clock()
    rng = random.Random(config.seed)
    unseen = [m.entry_id for m in split.validation]
    unseen += [m.entry_id for members in split.held_out_topics.values() for m in members]
    served = knowledge
    knowledge = knowledge.classifier_excluding(unseen)
    verifier = knowledge.served_verifier()
    # The verifier's say counts only when it learnt nothing of these questions.
    verified = verifier is not None and verifier.learnt_nothing_of(held_out_of(split))
    said = _as_found if verified else _unverified
    is_answer = _answer_judge(split)
    # Small talk and requests for a person get set replies, never the logs' answers.
    questions = [
        m
        for m in split.validation
        if not answered_with_set_reply(m.text, after_answer=m.after_answer)
    ]
    in_scope = questions[: config.max_validation_queries]
    out_of_scope: list[LabelledMessage] = []
    excluded: list[list[str]] = []
    for members in split.held_out_topics.values():
        conversations = sorted({m.conversation_id for m in members})
        for message in members:
            out_of_scope.append(message)
            excluded.append(conversations)
    if len(out_of_scope) > _MAX_OUT_OF_SCOPE_QUERIES:
        picked = sorted(rng.sample(range(len(out_of_scope)), _MAX_OUT_OF_SCOPE_QUERIES))
        out_of_scope = [out_of_scope[i] for i in picked]
        excluded = [excluded[i] for i in picked]
    # The generic questions are few (~150) and enter every fit: searched first.
    generic = (
        [f for f in map(said, generic_off_topic_features(knowledge, verify=verified)) if f]
        if config.generic_off_topic
        else []
    )
    in_hits, out_hits, rounds, per_question = _search_in_rounds(
        knowledge,
        [(Query(m.text), [m.conversation_id]) for m in in_scope],
        [(Query(m.text), ids) for m, ids in zip(out_of_scope, excluded, strict=True)],
        seed=config.seed,
        deadline=deadline,
        clock=clock,
        progress=progress,
        max_rounds=max_rounds,
        verify=verified,
    )

    top1 = recall5 = 0
    cases = []
    for i, hits in sorted(in_hits.items()):
        right = [is_answer(in_scope[i], h) for h in hits]
        top1 += bool(right) and right[0]
        recall5 += any(right)
        features = said(retrieval_features(hits))
        # A best answer the engine withholds is handed off, as `supportbot calibrate`
        # counts it (retrieval.claims), when the engine is set to withhold it.
        if features is not None:
            cases.append(
                CalibrationCase(
                    features,
                    in_scope=True,
                    correct=bool(right and right[0]),
                    withheld=withhold_claims and withheld_best(hits),
                )
            )
    for _, hits in sorted(out_hits.items()):
        features = said(retrieval_features(hits))
        if features is not None:
            withheld = withhold_claims and withheld_best(hits)
            cases.append(CalibrationCase(features, in_scope=False, withheld=withheld))
    result = None
    table: list[dict[str, Any]] = []
    if any(not c.in_scope for c in cases) and any(c.answerable for c in cases):
        target = config.target_handoff_recall
        result = calibrate(
            cases, target, wrong_answer_cost=config.wrong_answer_cost, generic=generic
        )
        assert result.weights is not None  # calibrate() always fits them
        table = trade_off_table(cases, result.weights, target, generic)
    version = served.version
    return RetrievalFigures(
        top1=top1 / max(len(in_hits), 1),
        recall_at_5=recall5 / max(len(in_hits), 1),
        calibration=result,
        embedder_id=served.embedder.model_id,
        index_version=version.id if version else None,
        trade_offs=table,
        searched=Searched(len(in_hits), len(in_scope), len(out_hits), len(out_of_scope), rounds),
        seconds=clock() - began,
        seconds_per_question=per_question,
        verified=None if verifier is None else verified,
    )


def save_fit(figures: RetrievalFigures, home: Path, config: TuningConfig, fitted_on: str) -> bool:
    """Save the hand-off calibration fitted in ``figures`` (weights and threshold, for
    their pair) under ``home`` for servers to apply; False when they hold none (no topic
    could be held out)."""
    if figures.calibration is None:
        return False
    save_calibration(
        home,
        Calibration(
            result=figures.calibration,
            index_version=figures.index_version,
            embedder_id=figures.embedder_id,
            created_at=time.time(),
        ),
        config.target_handoff_recall,
        wrong_answer_cost=config.wrong_answer_cost,
        fitted_on=fitted_on,
        trade_offs=figures.trade_offs,
    )
    return True


def held_out_of(split: TuningSplit) -> HeldOut:
    """The conversations whose messages :func:`measure` asks: a verifier trained without
    them (``supportbot train`` trains it so) may have its say in the figures."""
    members = [*split.validation, *(m for ms in split.held_out_topics.values() for m in ms)]
    return HeldOut.of({m.conversation_id for m in members})


def _as_found(features: ConfidenceFeatures | None) -> ConfidenceFeatures | None:
    return features


def _unverified(features: ConfidenceFeatures | None) -> ConfidenceFeatures | None:
    """``features`` without the reply verifier's say. A verifier trained on every logged
    turn (``supportbot calibrate``'s) learnt these validation questions and held-out topics
    too: it is surer of them than of a customer's new message, and a weight fitted on that
    would trust it too much."""
    if features is None:
        return features
    return replace(features, verifier_probability=None)


def _answer_judge(split: TuningSplit) -> Callable[[LabelledMessage, RetrievedExchange], bool]:
    """Whether a hit answers a message: same reply cluster, or the same answer in words."""
    cluster_by_reply = {}
    for message in (*split.train, *split.validation):
        cluster_by_reply[normalise_reply(message.reply)] = split.cluster_of[message.entry_id]

    def is_answer(message: LabelledMessage, hit: RetrievedExchange) -> bool:
        wanted = split.cluster_of[message.entry_id]
        found = cluster_by_reply.get(normalise_reply(hit.agent_reply))
        if found is not None:
            return found == wanted
        return answers_match(message.reply, hit.agent_reply)

    return is_answer


# (query, conversations its search leaves out)
_Question = tuple[Query, list[str]]


def _search_in_rounds(
    knowledge: KnowledgeBase,
    in_scope: Sequence[_Question],
    out_of_scope: Sequence[_Question],
    *,
    seed: int,
    deadline: float | None,
    clock: Callable[[], float],
    progress: bool,
    max_rounds: int | None,
    verify: bool,
) -> tuple[dict[int, list[RetrievedExchange]], dict[int, list[RetrievedExchange]], int, float]:
    """The hits (top 5) of the questions searched, by their index in each list, the rounds
    searched, and the seconds a question took in the slowest round: each round takes the
    next share of both lists (in a seeded order), and starts while the next round is
    expected to end before ``deadline``; see :func:`measure`."""
    rounds = max(1, math.ceil((len(in_scope) + len(out_of_scope)) / _ROUND))
    orders = []
    for offset, questions in enumerate((in_scope, out_of_scope)):
        order = list(range(len(questions)))
        random.Random(seed + offset).shuffle(order)
        orders.append((questions, order, math.ceil(len(questions) / rounds)))
    found: tuple[dict[int, list[RetrievedExchange]], ...] = ({}, {})
    searched = 0
    total = len(in_scope) + len(out_of_scope)
    allowed = rounds if max_rounds is None else min(rounds, max_rounds)
    pace = Pace(deadline, clock)
    with tqdm(total=total, desc="hand-off fit", unit="question", disable=not progress) as bar:
        for n in pace.rounds(allowed, first_always=True):
            for hits_of, (questions, order, size) in zip(found, orders, strict=True):
                picked = order[n * size : (n + 1) * size]
                if picked:
                    hits = knowledge.search_batch(
                        [questions[i][0] for i in picked],
                        5,
                        exclude_conversation_ids=[questions[i][1] for i in picked],
                        # 15 ms a question, for figures that would not use it.
                        verify=verify,
                    )
                    hits_of.update(zip(picked, hits, strict=True))
                    bar.update(len(picked))
            searched = n + 1
    if len(found[0]) + len(found[1]) < total:
        log.info(
            "hand-off fit: %d of %d validation and %d of %d held-out-topic questions searched"
            " by the deadline",
            len(found[0]),
            len(in_scope),
            len(found[1]),
            len(out_of_scope),
        )
    per_round = sum(size for _, _, size in orders)
    return found[0], found[1], searched, pace.slowest / max(per_round, 1)
