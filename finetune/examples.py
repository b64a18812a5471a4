"""Training examples built the way the bot answers: retrieved evidence, history, message.

Evidence never comes from the example's own conversation. Following RAFT, most prompts
(``reference_rate``) show a past reply that backs the target among distractors, and the
rest show distractors only, so the model has to read the
evidence instead of memorising answers. When the shown evidence does not back the facts of
the reference reply, the target becomes the hand-off reply: the model is taught never to
state a fact it was not given.

A target is the logged reply as the bot would send it (:func:`reply_target`): a chat
reply, not someone else's e-mail (no dangling "All the best,", no "just reply to this
email", no fresh "Hi," in the middle of a conversation) that greets no one by the name
placeholder the scrubber left ("Hi [NAME]," -> "Hi,"). The evidence is shown as logged:
the model learns to carry its facts over, not its letter forms.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from finetune.prompting import PromptRequest
from retrieval.chat_ready import generator_ready
from retrieval.facts import GroundingEvidence, extract_facts, grounding_evidence, supported_facts
from retrieval.records import Conversation, LogMessage, Query, RetrievedExchange, follows_a_reply

_WORD_RE = re.compile(r"\w+")


class ExchangeRetriever(Protocol):
    """What training and evaluation need from the knowledge base
    (:class:`retrieval.knowledge.KnowledgeBase` satisfies it)."""

    def search_batch(
        self,
        queries: Sequence[Query],
        k: int,
        *,
        exclude_conversation_ids: Sequence[Collection[str]] | None = None,
    ) -> list[list[RetrievedExchange]]: ...


@dataclass(frozen=True)
class Turn:
    """One agent reply in a logged conversation and what the agent saw before writing it."""

    conversation_id: str
    history: tuple[LogMessage, ...]
    customer_text: str
    reply: str


@dataclass(frozen=True)
class TrainingExample:
    request: PromptRequest
    target: str
    conversation_id: str
    has_reference: bool  # evidence holds a past reply backing the target


def iter_turns(conversation: Conversation) -> Iterator[Turn]:
    """Each run of agent messages that answers a run of customer messages."""
    messages = conversation.messages
    i = 0
    while i < len(messages):
        if messages[i].role != "customer":
            i += 1
            continue
        start = i
        while i < len(messages) and messages[i].role == "customer":
            i += 1
        reply_start = i
        while i < len(messages) and messages[i].role == "agent":
            i += 1
        if i == reply_start:
            break  # the customer had the last word
        yield Turn(
            conversation_id=conversation.id,
            history=messages[:start],
            customer_text="\n".join(m.text for m in messages[start:reply_start]),
            reply="\n".join(m.text for m in messages[reply_start:i]),
        )


VALIDATION_PERCENT = 5.0  # of the training conversations, for early stopping
_VALIDATION_SALT = "validation"
_MIN_CONVERSATIONS_TO_VALIDATE = 10  # below this, every conversation trains


def _bucket(conversation_id: str, salt: str) -> int:
    key = f"{salt}\0{conversation_id}" if salt else conversation_id
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % 10_000


def split_held_out(
    conversations: Iterable[Conversation], percent: float, *, salt: str = ""
) -> tuple[list[Conversation], list[Conversation]]:
    """Deterministic split by a hash of the conversation id (and ``salt``): (kept, held out).

    The fixed held-out set hashes the bare id. Any split taken again from what it kept
    needs its own salt: with the same hash, every id below the smaller share is already
    held out, and the second split comes out empty.
    """
    kept: list[Conversation] = []
    held: list[Conversation] = []
    for conversation in conversations:
        (held if _bucket(conversation.id, salt) < percent * 100 else kept).append(conversation)
    return kept, held


def split_validation(
    conversations: Iterable[Conversation], percent: float = VALIDATION_PERCENT
) -> tuple[list[Conversation], list[Conversation]]:
    """(fit, validation): a stable share of the training conversations for early stopping.

    Drawn with a salted hash, independently of the held-out split. A corpus of at least
    ten conversations always validates on one or more: when the share rounds to none,
    the conversation with the lowest salted hash validates (stable across runs and orders).
    """
    fit, validation = split_held_out(conversations, percent, salt=_VALIDATION_SALT)
    if not validation and len(fit) >= _MIN_CONVERSATIONS_TO_VALIDATE:
        first = min(fit, key=lambda c: (_bucket(c.id, _VALIDATION_SALT), c.id))
        fit = [c for c in fit if c is not first]
        validation = [first]
    return fit, validation


def retrieve_for_turns(
    turns: Sequence[Turn],
    retriever: ExchangeRetriever,
    k: int,
    *,
    batch_size: int = 256,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[list[RetrievedExchange]]:
    """Top-``k`` distinct past replies for each turn, never from the turn's own conversation.

    With ``deadline`` (a ``clock()`` instant), no batch starts after it but the first: the
    hits of the first turns, as many as were reached.
    """
    results: list[list[RetrievedExchange]] = []
    for start in range(0, len(turns), batch_size):
        if start and deadline is not None and clock() >= deadline:
            break
        chunk = turns[start : start + batch_size]
        hits = retriever.search_batch(
            [Query(t.customer_text, t.history) for t in chunk],
            k,
            exclude_conversation_ids=[{t.conversation_id} for t in chunk],
        )
        for turn, found in zip(chunk, hits, strict=True):
            results.append(
                _distinct_replies(h for h in found if h.conversation_id != turn.conversation_id)
            )
    return results


def build_examples(
    turns: Sequence[Turn],
    retrieved: Sequence[Sequence[RetrievedExchange]],
    *,
    k: int,
    reference_rate: float,
    handoff_reply: str,
    seed: int,
    shuffle_evidence: bool = False,
) -> list[TrainingExample]:
    """RAFT-style examples, one per turn (see the module docstring).

    Evidence keeps the retriever's order unless ``shuffle_evidence``: shuffled slots force
    the model to compare every past question with the message, which a small model trained
    for minutes does not learn (Banking77: it then picks among the evidence almost at
    random), while the rank order gives it the retriever's judgement as a prior.
    """
    rng = random.Random(seed)
    examples = []
    for turn, hits in zip(turns, retrieved, strict=True):
        rank = {id(h): i for i, h in enumerate(hits)}
        backing = [h for h in hits if backs(h.agent_reply, turn.reply)]
        distractors = [h for h in hits if not backs(h.agent_reply, turn.reply)]
        with_reference = bool(backing) and k > 0 and rng.random() < reference_rate
        evidence = [backing[0], *distractors[: k - 1]] if with_reference else distractors[:k]
        if shuffle_evidence:
            rng.shuffle(evidence)
        else:
            evidence.sort(key=lambda h: rank[id(h)])
        target = reply_target(turn)
        if not with_reference and not is_grounded(turn, evidence):
            target = handoff_reply
        examples.append(
            TrainingExample(
                request=PromptRequest(turn.customer_text, turn.history, tuple(evidence)),
                target=target,
                conversation_id=turn.conversation_id,
                has_reference=with_reference,
            )
        )
    return examples


def correction_examples(
    turns: Sequence[Turn],
    retrieved: Sequence[Sequence[RetrievedExchange]],
    *,
    k: int,
) -> list[TrainingExample]:
    """Examples for operators' corrections, shown the way the bot serves them.

    A correction is added to retrieval as a curated answer, and curated answers rank first,
    so whenever the bot answers that question (or one like it) the corrected answer is the
    first evidence. Each example shows it there, followed by ``k - 1`` retrieved past
    replies that do not back it, and teaches the corrected answer: the model learns to
    carry the operator's facts over from the evidence. The curated hit is the retrieved one
    when retrieval found it, else one built from the correction itself (a retriever that
    does not hold it yet); the RAFT distractor-only prompts of :func:`build_examples` are
    left out, since no served prompt for this question lacks the correction.
    """
    examples = []
    for turn, hits in zip(turns, retrieved, strict=True):
        curated = next(
            (h for h in hits if h.kind == "curated" and backs(h.agent_reply, turn.reply)),
            RetrievedExchange(
                score=1.0,
                source_id=turn.conversation_id,
                customer_text=turn.customer_text,
                agent_reply=turn.reply,
                kind="curated",
                conversation_id=turn.conversation_id,
                context=turn.history,
            ),
        )
        distractors = [h for h in hits if not backs(h.agent_reply, turn.reply)]
        evidence = (curated, *distractors[: max(0, k - 1)]) if k > 0 else ()
        examples.append(
            TrainingExample(
                request=PromptRequest(turn.customer_text, turn.history, evidence),
                target=reply_target(turn),
                conversation_id=turn.conversation_id,
                has_reference=bool(evidence),
            )
        )
    return examples


def reply_target(turn: Turn) -> str:
    """The reply the generator learns (and is scored against) for ``turn``: the logged
    reply as :func:`retrieval.chat_ready.generator_ready` makes it, its salutation dropped
    when an agent has written before in the conversation, as the engine drops a copied
    reply's. Trained on the logs as they are, a generated reply ended on "All the best,"
    and greeted "Hi [NAME],"."""
    return generator_ready(turn.reply, mid_conversation=follows_a_reply(turn.history))


def backs(candidate: str, target: str) -> bool:
    """Whether a past reply could stand in for ``target``: it states every fact of the
    target, or (for fact-free replies) says much the same thing."""
    facts = extract_facts(target)
    if facts:
        return not facts - supported_facts([candidate])
    return _word_f1(candidate, target) >= 0.6


def is_grounded(turn: Turn, evidence: Sequence[RetrievedExchange]) -> bool:
    """Every fact of the turn's reply is backed as the engine requires (:func:`reply_evidence`):
    a reply that repeats a fact only the customer typed would be refused when served, so
    it is no target to learn."""
    return not reply_evidence(turn.history, turn.customer_text, evidence).unsupported(turn.reply)


def reply_evidence(
    history: Sequence[LogMessage], customer_text: str, evidence: Sequence[RetrievedExchange]
) -> GroundingEvidence:
    """What a reply may take facts from, by the engine's rule
    (:func:`retrieval.facts.grounding_evidence`): the agent replies of the retrieved
    exchanges and the conversation's earlier replies; of the customer's words only their
    order or ticket number, named as such, and never a past customer's question.

    A logged ``agent`` turn is read as the bot's (the order and ticket numbers it names
    back nothing): the exported feedback holds the bot's turns under that role, and the
    bot's acknowledgement of the customer's order number is still the customer's word.
    """
    earlier = (("bot" if m.role == "agent" else m.role, m.text) for m in history)
    return grounding_evidence((hit.agent_reply for hit in evidence), earlier, customer_text)


def _distinct_replies(hits: Iterable[RetrievedExchange]) -> list[RetrievedExchange]:
    seen: set[str] = set()
    out = []
    for hit in hits:
        key = " ".join(hit.agent_reply.lower().split())
        if key not in seen:
            seen.add(key)
            out.append(hit)
    return out


def _word_f1(a: str, b: str) -> float:
    wa, wb = _WORD_RE.findall(a.lower()), _WORD_RE.findall(b.lower())
    if not wa or not wb:
        return float(wa == wb)
    common = 0
    pool = list(wb)
    for word in wa:
        if word in pool:
            pool.remove(word)
            common += 1
    if common == 0:
        return 0.0
    precision, recall = common / len(wa), common / len(wb)
    return 2 * precision * recall / (precision + recall)
