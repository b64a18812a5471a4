"""Evaluation on held-out conversations: answer match and grounding, against baselines.

Answer match is ROUGE-L F1 against the agent's real reply, in the form the generator learns
to write it (:func:`finetune.examples.reply_target`: no e-mail sign-off, no placeholder
greeting), and copying is scored as the engine copies (:func:`retrieval.claims.as_copied`):
against the logs as they are, copying's sign-offs matched the reference's, and a generator
taught to leave them out lost answer match to copying for it. Grounded share is the share of
replies whose facts (codes, URLs, numbers, amounts) are all backed by what the model was
shown, by the engine's rule (the replies of the retrieved exchanges and of the
conversation; of the customer's words only their order or ticket number named as such:
:func:`finetune.examples.reply_evidence`), and that are not fact-free where the agent's
reply states facts: polite text without the article code or the link is no answer, and
would otherwise count as grounded since it invents nothing. Facts share is the share of
the replies to fact-stating references that state every one of those facts. The same
figures are computed for the base model without the adapter and for copying the top
retrieved reply.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from finetune.examples import reply_evidence
from finetune.prompting import PromptRequest
from finetune.serving_policy import COPY_SYSTEM
from retrieval.claims import as_copied
from retrieval.facts import extract_facts, supported_facts
from retrieval.pacing import Pace
from retrieval.records import follows_a_reply


class _NoDefaultTokenizerNotice(logging.Filter):
    """rouge-score logs "Using default tokenizer." at INFO through absl's logger for every
    scorer it makes (three a training run); it tells a user nothing to act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Using default tokenizer."


logging.getLogger("absl").addFilter(_NoDefaultTokenizerNotice())


BASE_MODEL_CASES = 16  # held-out replies the base model writes for comparison


@dataclass(frozen=True)
class EvalCase:
    request: PromptRequest
    reference: str
    conversation_id: str


@dataclass(frozen=True)
class SystemScores:
    name: str
    examples: int
    rouge_l: float
    grounded_share: float
    handoff_share: float
    facts_share: float | None = None  # None: no reference states a fact

    def as_dict(self) -> dict[str, float | int | str | None]:
        return {
            "name": self.name,
            "examples": self.examples,
            "rouge_l": round(self.rouge_l, 4),
            "grounded_share": round(self.grounded_share, 4),
            "handoff_share": round(self.handoff_share, 4),
            "facts_share": None if self.facts_share is None else round(self.facts_share, 4),
        }


def score_replies(
    name: str, replies: Sequence[str], cases: Sequence[EvalCase], *, handoff_reply: str = ""
) -> SystemScores:
    if len(replies) != len(cases):
        raise ValueError(f"{len(replies)} replies for {len(cases)} cases")
    if not cases:
        return SystemScores(name, 0, 0.0, 0.0, 0.0)
    # lazy: rouge_score loads nltk, and with it scikit-learn and scipy (about 1,400 modules,
    # seconds): every command and the server import this module, only evaluation scores.
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rouge = [
        scorer.score(c.reference, r)["rougeL"].fmeasure for r, c in zip(replies, cases, strict=True)
    ]
    handoff = handoff_reply.strip()
    handoffs = [bool(handoff) and r.strip() == handoff for r in replies]
    grounded = [
        is_grounded(reply, case, handed_off=h)
        for reply, case, h in zip(replies, cases, handoffs, strict=True)
    ]
    stated = [
        states_reference_facts(reply, case)
        for reply, case in zip(replies, cases, strict=True)
        if extract_facts(case.reference)
    ]
    n = len(cases)
    return SystemScores(
        name,
        n,
        sum(rouge) / n,
        sum(grounded) / n,
        sum(handoffs) / n,
        sum(stated) / len(stated) if stated else None,
    )


def is_grounded(reply: str, case: EvalCase, *, handed_off: bool) -> bool:
    """The reply states no fact missing from what the model was shown, and is not fact-free
    where the reference states facts, unless it hands off when the evidence did not hold
    them (the right call then: the model had nothing to take them from)."""
    request = case.request
    shown = reply_evidence(request.history, request.customer_text, request.evidence)
    if shown.unsupported(reply):
        return False
    if not extract_facts(case.reference) or extract_facts(reply):
        return True
    return handed_off and bool(shown.unsupported(case.reference))


def states_reference_facts(reply: str, case: EvalCase) -> bool:
    """The reply states every fact of the reference (its article code, link, amount)."""
    return not extract_facts(case.reference) - supported_facts([reply])


def copy_top_retrieved(cases: Sequence[EvalCase]) -> list[str]:
    """The baseline that answers with the best-matching past reply, copied as the engine
    copies it."""
    return copy_top_evidence([c.request for c in cases])


def copy_top_evidence(requests: Sequence[PromptRequest]) -> list[str]:
    """The copy baseline as a ``generate`` function: each request's first evidence reply,
    as the engine sends it copied (an operator's correction as written)."""
    return [_as_copied(r) for r in requests]


def _as_copied(request: PromptRequest) -> str:
    if not request.evidence:
        return ""
    top = request.evidence[0]
    # The engine's own reading (the one calibrate's judge reads too): without the link its
    # agent promised to send or the "I've looked it up", and without the e-mail forms. A
    # reply that claims an action is scored as written, though the engine hands it to a
    # person: the generator's replies are not held to that rule here either.
    mid_conversation = follows_a_reply(request.history)
    return as_copied(top.agent_reply, top.kind, mid_conversation=mid_conversation).text


# Writes replies to requests, in order, stopping at a deadline (a ``time.monotonic()``
# instant; None: none); a reply the deadline cut, or never began, is None.
ReplyWriter = Callable[[Sequence[PromptRequest], float | None], list[str | None]]


@dataclass(frozen=True)
class Evaluation:
    """The systems' scores, and how many held-out cases the adapter's replies covered."""

    scores: list[SystemScores]
    held_out: int  # cases there were
    cut: int  # adapter replies the deadline stopped half-written: not scored

    @property
    def scored(self) -> int:
        """Cases the adapter's figures (and copying's) are computed on."""
        return self.scores[0].examples

    def as_dict(self) -> dict[str, int]:
        return {"held_out": self.held_out, "scored": self.scored, "cut": self.cut}

    def sentence(self) -> str:
        """How much of the held-out set was evaluated, as ``supportbot train`` prints it."""
        left = self.held_out - self.scored - self.cut
        notes = [f"{self.cut} cut short by the budget, not scored"] if self.cut else []
        notes += [f"{left} not reached"] if left else []
        extra = f" ({'; '.join(notes)})" if notes else ""
        return f"{self.scored} of {self.held_out} held-out replies evaluated{extra}"


def evaluate_systems(
    cases: Sequence[EvalCase],
    generate: ReplyWriter,
    *,
    adapter_off: Callable[[], contextlib.AbstractContextManager[object]] | None,
    handoff_reply: str,
    base_model_cases: int = BASE_MODEL_CASES,
    batch_size: int = 8,
    deadline: float | None = None,
) -> Evaluation:
    """Scores of the adapted model, the base model (``adapter_off`` context) and copying.

    ``generate`` is called a batch (``batch_size`` requests) at a time, with ``deadline``
    (a ``time.monotonic()`` instant; None: every case is answered). The evaluation is part
    of a training budget, and on a CPU each held-out reply costs seconds: a batch starts
    only while it is expected to end before the deadline (timed as the slowest so far;
    the first one starts whenever the deadline is ahead), and ``generate`` stops writing
    at the deadline, even in the first batch. Only replies written to the end are scored,
    and copying is scored on those same cases. A batch the deadline cut keeps the replies
    that ended first, the shortest: too few of them tell nothing, which the serving policy
    takes into account (:data:`finetune.serving_policy.MIN_SCORED_REPLIES`). The base
    model answers the first ``base_model_cases`` of the scored cases, while time remains:
    it shows what the adapter adds and decides nothing (serving compares the adapter with
    copying), while each of its replies costs as much as the adapter's.
    """
    written, batch_s = generate_until(cases, generate, batch_size, deadline)
    adapter, answered = _finished(written, cases)
    results = [score_replies("adapter", adapter, answered, handoff_reply=handoff_reply)]
    if adapter_off is not None and base_model_cases > 0 and answered:
        glimpse = answered[:base_model_cases]
        with adapter_off():
            base_written, _ = generate_until(
                glimpse, generate, batch_size, deadline, batch_s=batch_s
            )
        base, base_cases = _finished(base_written, glimpse)
        if base:
            results.append(
                score_replies("base model", base, base_cases, handoff_reply=handoff_reply)
            )
    results.append(
        score_replies(
            COPY_SYSTEM, copy_top_retrieved(answered), answered, handoff_reply=handoff_reply
        )
    )
    cut = sum(reply is None for reply in written)
    return Evaluation(results, len(cases), cut)


def counting(write: ReplyWriter, written: Callable[[int], object]) -> ReplyWriter:
    """``write`` that also tells ``written`` how many replies each call finished (a progress
    bar's ``update``)."""

    def counted(requests: Sequence[PromptRequest], deadline: float | None) -> list[str | None]:
        replies = write(requests, deadline)
        written(sum(reply is not None for reply in replies))
        return replies

    return counted


def unscored(held_out: int) -> Evaluation:
    """The evaluation of ``held_out`` cases that the deadline left no time to answer."""
    empty: list[EvalCase] = []
    scores = [score_replies(name, [], empty) for name in ("adapter", COPY_SYSTEM)]
    return Evaluation(scores, held_out, 0)


def generate_until(
    cases: Sequence[EvalCase],
    generate: ReplyWriter,
    batch_size: int,
    deadline: float | None,
    *,
    batch_s: float = 0.0,
) -> tuple[list[str | None], float]:
    """Replies to the first cases in order (None: cut by the deadline), a batch at a time,
    while the next batch (timed as the slowest so far, ``batch_s`` before the first) is
    expected to end before ``deadline``; the batches stop at the first cut reply. Also
    returns the slowest batch's seconds."""
    replies: list[str | None] = []
    pace = Pace(deadline, time.monotonic, slowest=batch_s)
    for n in pace.rounds(math.ceil(len(cases) / batch_size)):
        if None in replies:  # checked here, so that the pace has timed the cut batch
            break
        batch = cases[n * batch_size : (n + 1) * batch_size]
        replies.extend(generate([c.request for c in batch], deadline))
    return replies, pace.slowest


def _finished(
    replies: Sequence[str | None], cases: Sequence[EvalCase]
) -> tuple[list[str], list[EvalCase]]:
    """The replies written to the end, and their cases."""
    pairs = [(r, c) for r, c in zip(replies, cases, strict=False) if r is not None]
    return [r for r, _ in pairs], [c for _, c in pairs]


def format_scores(scores: Sequence[SystemScores]) -> str:
    """The table ``supportbot train`` prints. A system scored on no reply shows dashes: a
    row of zeros ("adapter 0 0.000 0.0%") read as an adapter that got everything wrong."""
    lines = [f"{'system':<20} {'n':>5} {'ROUGE-L':>8} {'grounded':>9} {'facts':>7} {'hand-off':>9}"]
    for s in scores:
        if not s.examples:
            lines.append(f"{s.name:<20} {0:>5} {'—':>8} {'—':>9} {'—':>7} {'—':>9}")
            continue
        facts = "—" if s.facts_share is None else f"{s.facts_share:.1%}"
        lines.append(
            f"{s.name:<20} {s.examples:>5} {s.rouge_l:>8.3f} {s.grounded_share:>9.1%}"
            f" {facts:>7} {s.handoff_share:>9.1%}"
        )
    return "\n".join(lines)
