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

import random
from dataclasses import dataclass, field
from typing import Any

from retrieval.calibration import (
    answers_match,
    generic_off_topic_features,
    signals_used,
    trade_off_table,
)
from retrieval.confidence import (
    CalibrationCase,
    CalibrationResult,
    calibrate,
    retrieval_features,
)
from retrieval.config import TuningConfig
from retrieval.knowledge import KnowledgeBase, Query
from retrieval.records import RetrievedExchange
from retrieval.tuning_data import (
    LabelledMessage,
    TuningSplit,
    cluster_replies,
    normalise_reply,
    split_for_tuning,
)

_MAX_OUT_OF_SCOPE_QUERIES = 1000


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
        )
        for entry_id, item in sorted(stored.items())
    ]


def tuning_split(
    knowledge: KnowledgeBase, config: TuningConfig
) -> tuple[list[LabelledMessage], TuningSplit]:
    """The live messages and their split for tuning: replies clustered by meaning (the
    served embedder's), validation conversations and held-out topics set aside."""
    messages = labelled_messages(knowledge)
    clusters = cluster_replies(
        [m.reply for m in messages],
        knowledge.embedder.encode,
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


def measure(knowledge: KnowledgeBase, split: TuningSplit, config: TuningConfig) -> RetrievalFigures:
    """Search every validation message and held-out-topic message in the served index.

    The searches exclude those messages' conversations, and the answer classifier is
    refitted without them: both must see these questions as new ones.
    """
    rng = random.Random(config.seed)
    unseen = [m.entry_id for m in split.validation]
    unseen += [m.entry_id for members in split.held_out_topics.values() for m in members]
    served = knowledge
    knowledge = knowledge.classifier_excluding(unseen)
    cluster_by_reply = {}
    for message in (*split.train, *split.validation):
        cluster_by_reply[normalise_reply(message.reply)] = split.cluster_of[message.entry_id]

    def is_answer(message: LabelledMessage, hit: RetrievedExchange) -> bool:
        wanted = split.cluster_of[message.entry_id]
        found = cluster_by_reply.get(normalise_reply(hit.agent_reply))
        if found is not None:
            return found == wanted
        return answers_match(message.reply, hit.agent_reply)

    in_scope = split.validation[: config.max_validation_queries]
    in_hits = knowledge.search_batch(
        [Query(m.text) for m in in_scope],
        5,
        exclude_conversation_ids=[[m.conversation_id] for m in in_scope],
    )
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
    out_hits = (
        knowledge.search_batch(
            [Query(m.text) for m in out_of_scope], 5, exclude_conversation_ids=excluded
        )
        if out_of_scope
        else []
    )

    top1 = recall5 = 0
    cases = []
    for message, hits in zip(in_scope, in_hits, strict=True):
        right = [is_answer(message, h) for h in hits]
        top1 += bool(right) and right[0]
        recall5 += any(right)
        features = retrieval_features(hits)
        if features is not None:
            cases.append(CalibrationCase(features, in_scope=True, correct=bool(right and right[0])))
    for hits in out_hits:
        features = retrieval_features(hits)
        if features is not None:
            cases.append(CalibrationCase(features, in_scope=False))
    result = None
    table: list[dict[str, Any]] = []
    if any(not c.in_scope for c in cases) and any(c.answerable for c in cases):
        generic = generic_off_topic_features(knowledge) if config.generic_off_topic else []
        target = config.target_handoff_recall
        result = calibrate(
            cases, target, wrong_answer_cost=config.wrong_answer_cost, generic=generic
        )
        assert result.weights is not None  # calibrate() always fits them
        table = trade_off_table(cases, result.weights, target, generic)
    version = served.version
    return RetrievalFigures(
        top1=top1 / len(in_scope),
        recall_at_5=recall5 / len(in_scope),
        calibration=result,
        embedder_id=served.embedder.model_id,
        index_version=version.id if version else None,
        trade_offs=table,
    )
