"""Fitting the hand-off decision on a validation split (``supportbot calibrate``).

In-scope cases are the customer turns of held-out conversations, with the agent reply that
followed as the expected answer; out-of-scope cases are questions the logs do not cover.
The fitted weights and threshold are saved in the home folder together with the index
version and embedder they were fitted for; the server applies them unless the settings
set those values explicitly (``bot.components.calibrated_engine_config``).

Operators may serve another row of the saved trade-off table (:func:`choose_target`, from
the dashboard; ``supportbot calibrate --target-recall R``). The target they chose is kept
in the file (``chosen_target``) and every later fit uses it (:func:`chosen_target_recall`):
a refit on the labelled files, ``calibrate`` without ``--target-recall``, and ``train`` and
``retrain``, which are given it by ``bot.components.tuning_config``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from retrieval.artifacts import updating, write_json
from retrieval.chat_ready import chat_ready
from retrieval.claims import as_copied, withheld_best
from retrieval.confidence import (
    FEATURE_NAMES,
    TRADE_OFF_TARGETS,
    CalibrationCase,
    CalibrationResult,
    ConfidenceFeatures,
    ConfidenceWeights,
    calibrate,
    retrieval_features,
    trade_offs,
)
from retrieval.config import DEFAULT_EMBEDDER, WRONG_ANSWER_COST, TuningConfig
from retrieval.embedder import Embedder
from retrieval.entries import entries_of
from retrieval.facts import extract_facts
from retrieval.parsers import read_logs
from retrieval.pii import scrub
from retrieval.questions import read_questions
from retrieval.records import ParseIssue, Query, RetrievedExchange, follows_a_reply
from retrieval.small_talk import answered_with_set_reply
from retrieval.tuning_data import normalise_reply

if TYPE_CHECKING:  # loads faiss: the server reads a saved calibration without it
    from retrieval.knowledge import KnowledgeBase

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"


def calibration_path(home: Path) -> Path:
    """Where the fitted values are kept: beside the index versions they were fitted for,
    in ``indexes/``, which replicas on several hosts share (see README, Deployment)."""
    return home / "indexes" / CALIBRATION_FILE


def _legacy_calibration_path(home: Path) -> Path:
    # Homes calibrated before the file moved into indexes/ kept it in the home's root.
    return home / CALIBRATION_FILE


_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Calibration:
    result: CalibrationResult
    index_version: int | None
    embedder_id: str
    created_at: float


def answers_match(expected: str, candidate: str) -> bool:
    """Whether a retrieved reply gives the expected answer.

    Replies that both cite articles or links match when they cite one in common; other
    replies (including one that gives the answer without the link) match when most of their
    words agree (an F1 overlap of at least one half), since agents word the same answer
    differently.
    """
    if " ".join(expected.split()).casefold() == " ".join(candidate.split()).casefold():
        return True
    cited, cited_candidate = _citations(expected), _citations(candidate)
    if cited and cited_candidate:
        return bool(cited & cited_candidate)
    # One of them cites nothing (an FAQ answer or a chat reply without the help-article
    # link): judge by what it says.
    return _word_f1(expected, candidate) >= 0.5


SAME_MEANING_AT = 0.57
"""MiniLM cosine of two replies (greetings aside) from which :class:`ReplyJudge` takes two
replies that do not both cite articles or links for the same answer in other words.
Chosen on half of 264 pairs of the sample's evaluation turns and their retrieved replies,
each labelled by reading (does the candidate give the customer the same answer as the
logged reply? two readers, who agreed on every pair), and checked on the other half: the
judge agreed with the labels on 0.909 of those pairs, against 0.871 for
:func:`answers_match` alone. Over all 264, word overlap called 27 of the 178 same-answer
pairs different ("I've passed this to my team lead ... within 1 business day" against
"I've escalated your case to a senior member of our team ... within 1 business day") and
10 of the 86 different-answer pairs the same (all of them citing one help article); the
judge gets 11 and 11 wrong (`python benchmarks/reply_judge.py`, on the labelled pairs in
benchmarks/data/reply_judge_pairs.jsonl)."""


class ReplyJudge:
    """Whether a retrieved reply gives the expected answer: :func:`answers_match`, or, when
    the two replies do not both cite articles or links, the same meaning in other words
    (cosine of their MiniLM vectors at least :data:`SAME_MEANING_AT`).

    Word overlap alone called 15% of the sample's retrieved replies that people read as the
    right answer wrong, so calibrate printed more wrong answers than customers got and fitted
    the hand-off on those labels. Two replies that cite different articles
    stay different, however alike they read; two that cite nothing and tell opposite outcomes
    in like words ("it has already shipped, so we cannot change the address" and "you caught
    it in time, I have updated the address") can pass, as one of the 86 different pairs
    above did. The default embedder's shipped weights judge
    whatever embedder serves, so that a tuned embedder cannot move the bar; vectors are
    computed once per reply, in batches (:meth:`judged`)."""

    def __init__(self, embedder: Embedder | None = None) -> None:
        self._embedder = embedder or Embedder(DEFAULT_EMBEDDER)
        self._vectors: dict[str, np.ndarray] = {}

    @classmethod
    def beside(cls, served: Embedder) -> ReplyJudge:
        """A judge that shares ``served`` when it is the judge's own model read alike (the
        default embedder, untuned), so calibrate loads MiniLM once, not twice."""
        own = Embedder(DEFAULT_EMBEDDER)
        alike = served.name == own.name and served.max_seq_length == own.max_seq_length
        return cls(served if alike else own)

    def __call__(self, expected: str, candidate: str) -> bool:
        return self.judged([(expected, candidate)])[0]

    def judged(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """Each (expected, candidate) pair judged; only the pairs that words and citations
        leave undecided are encoded, in one batch, each reply once."""
        verdicts = [_by_words(expected, candidate) for expected, candidate in pairs]
        undecided = [pair for pair, v in zip(pairs, verdicts, strict=True) if v is None]
        missing = sorted(
            {normalise_reply(r) for pair in undecided for r in pair} - self._vectors.keys()
        )
        if missing:
            self._vectors.update(zip(missing, self._embedder.encode(missing), strict=True))
        return [
            v
            if v is not None
            else float(self._vectors[normalise_reply(e)] @ self._vectors[normalise_reply(c)])
            >= SAME_MEANING_AT
            for (e, c), v in zip(pairs, verdicts, strict=True)
        ]


def _by_words(expected: str, candidate: str) -> bool | None:
    """:func:`answers_match`'s yes, a no where both replies cite and share nothing, else
    undecided (None): words alone say no to the same answer in other words."""
    if answers_match(expected, candidate):
        return True
    if _citations(expected) and _citations(candidate):
        return False
    return None


def _citations(text: str) -> set[str]:
    return {f for f in extract_facts(text) if not f.replace(".", "").replace(":", "").isdigit()}


def _word_f1(a: str, b: str) -> float:
    words_a, words_b = Counter(_WORD.findall(a.lower())), Counter(_WORD.findall(b.lower()))
    common = sum((words_a & words_b).values())
    if not common:
        return 0.0
    precision, recall = common / sum(words_b.values()), common / sum(words_a.values())
    return 2 * precision * recall / (precision + recall)


class LabelledCases(NamedTuple):
    cases: list[CalibrationCase]
    issues: list[ParseIssue]
    set_replies: int  # in-scope turns left out: answered with the engine's set replies


def build_cases(
    knowledge: KnowledgeBase,
    eval_path: Path,
    out_of_scope_path: Path,
    *,
    withhold_claims: bool = True,
) -> LabelledCases:
    """Retrieve for every validation question and label the result.

    Turns that are only small talk ("awesome, appreciate it") or ask for a person are left
    out: the engine answers them with its set replies and never searches the logs for them,
    so counting another agent's "You're welcome!" as a wrong answer to them understated what
    customers get and taught the fit that a perfect match can be wrong.

    With ``withhold_claims`` (the engine's ``hand_off_claimed_actions``), a question whose
    best answer is a logged reply that claims an action, states that customer's case or
    asks for details a person must act on (:mod:`retrieval.claims`) is marked withheld: the
    engine hands it off whatever its confidence. Counted as answered, "Done! the
    cancellation went through" was an answer the judge read as right, though no customer is
    ever sent it. The best answer is judged in the form the engine sends it
    (:func:`_as_judged`)."""
    issues: list[ParseIssue] = []
    queries: list[Query] = []
    expected: list[str | None] = []
    set_replies = 0
    for record in read_logs(eval_path):
        if isinstance(record, ParseIssue):
            issues.append(record)
            continue
        for entry in entries_of(record):
            text = _clean(entry.customer_text)
            if answered_with_set_reply(text, after_answer=follows_a_reply(entry.context)):
                set_replies += 1
                continue
            queries.append(Query(text, entry.context))
            expected.append(entry.agent_reply)
    for question in read_questions(out_of_scope_path):
        if isinstance(question, ParseIssue):
            issues.append(question)
            continue
        queries.append(Query(_clean(question.customer_text), question.context))
        expected.append(None)
    # The search takes half a minute on two cores for the sample's 239 questions, and
    # `supportbot calibrate` printed nothing meanwhile.
    log.info(
        "calibration: searching the %d questions of %s and %s (%d turns answered with set"
        " replies left out)",
        len(queries),
        eval_path.name,
        out_of_scope_path.name,
        set_replies,
    )
    results = knowledge.search_batch(queries, 5) if queries else []
    answered = [
        _as_judged(reference, hits[0], follows_a_reply(query.context), withhold_claims)
        for query, hits, reference in zip(queries, results, expected, strict=True)
        if reference is not None and hits
    ]
    right = iter(ReplyJudge.beside(knowledge.embedder).judged(answered))
    cases = []
    for hits, reference in zip(results, expected, strict=True):
        features = retrieval_features(hits)
        # In the order of ``answered``: every in-scope question with a hit takes its verdict.
        correct = reference is not None and bool(hits) and next(right)
        if features is None:
            continue
        cases.append(
            CalibrationCase(
                features,
                in_scope=reference is not None,
                correct=correct,
                withheld=withhold_claims and withheld_best(hits),
            )
        )
    return LabelledCases(cases, issues, set_replies)


def _as_judged(
    reference: str, best: RetrievedExchange, mid_conversation: bool, withhold_claims: bool
) -> tuple[str, str]:
    """The logged reply and the best hit's, as the judge compares them: the hit's as the
    engine sends it copied (:func:`retrieval.claims.as_copied`: chat-ready, without what
    its agent said they would send), the logged one in the same chat form. Read as logged,
    two different answers that shared an e-mail's "If you have any other questions, just
    reply to this email. Best, ... Customer Care" agreed in a dozen words no customer is
    sent, and an answer's words were judged beside a signature it does not carry."""
    sent = as_copied(
        best.agent_reply,
        best.kind,
        mid_conversation=mid_conversation,
        withhold_claims=withhold_claims,
    )
    return chat_ready(reference, mid_conversation=mid_conversation), sent.text


def generic_off_topic_questions() -> list[str]:
    """The generic off-topic questions shipped with supportbot
    (``retrieval/data/generic_off_topic.txt``): chit-chat, general knowledge, tasks for a
    general assistant, other services; what any business's customers also type."""
    text = resources.files("retrieval").joinpath("data/generic_off_topic.txt").read_text("utf-8")
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def generic_off_topic_features(
    knowledge: KnowledgeBase, *, verify: bool = True
) -> list[ConfidenceFeatures]:
    """The confidence features of each generic off-topic question in ``knowledge``, for the
    hand-off threshold to hand off the target share of them too."""
    questions = [Query(q) for q in generic_off_topic_questions()]
    hits = knowledge.search_batch(questions, 5, verify=verify)
    return [f for f in map(retrieval_features, hits) if f is not None]


def run_calibration(
    knowledge: KnowledgeBase,
    eval_path: Path,
    out_of_scope_path: Path,
    home: Path,
    *,
    target_handoff_recall: float = 0.9,
    wrong_answer_cost: float = WRONG_ANSWER_COST,
    chosen_by: str | None = None,
    generic_off_topic: bool = True,
    withhold_claims: bool = True,
) -> tuple[Calibration, list[ParseIssue]]:
    """Fit on the validation files, save them (:func:`calibration_path`), and return it.
    With ``chosen_by``, ``target_handoff_recall`` is recorded as chosen by them, for later
    fits to keep (else an earlier choice stays recorded). With ``generic_off_topic``, the
    threshold also hands off the target share of the generic off-topic questions.

    Raises ValueError when the files hold no answerable or no out-of-scope case.
    """
    cases, issues, set_replies = build_cases(
        knowledge, eval_path, out_of_scope_path, withhold_claims=withhold_claims
    )
    generic = generic_off_topic_features(knowledge) if generic_off_topic else []
    result = calibrate(
        cases, target_handoff_recall, wrong_answer_cost=wrong_answer_cost, generic=generic
    )
    assert result.weights is not None  # calibrate() always fits them
    version = knowledge.version
    calibration = Calibration(
        result=result,
        index_version=version.id if version else None,
        embedder_id=knowledge.embedder.model_id,
        created_at=time.time(),
    )
    save_calibration(
        home,
        calibration,
        target_handoff_recall,
        wrong_answer_cost=wrong_answer_cost,
        fitted_on="files",
        **(
            {}
            if chosen_by is None
            else {"chosen_target": _choice(target_handoff_recall, chosen_by)}
        ),
        eval_path=str(eval_path.resolve()),
        out_of_scope_path=str(out_of_scope_path.resolve()),
        set_replies_left_out=set_replies,
        withheld_in_scope=sum(1 for c in cases if c.in_scope and c.withheld),
        trade_offs=trade_off_table(cases, result.weights, target_handoff_recall, generic),
    )
    return calibration, issues


def trade_off_table(
    cases: Sequence[CalibrationCase],
    weights: ConfidenceWeights,
    target: float,
    generic: Sequence[ConfidenceFeatures] = (),
) -> list[dict[str, Any]]:
    """What each hand-off target of TRADE_OFF_TARGETS and ``target`` gives on ``cases`` with
    ``weights``, as saved with a calibration: the rows an operator chooses among."""
    targets = sorted({*TRADE_OFF_TARGETS, target})
    results = trade_offs(cases, weights, targets, generic=generic)
    return [
        {"target_handoff_recall": t, **_figures(r)} for t, r in zip(targets, results, strict=True)
    ]


def _figures(result: CalibrationResult) -> dict[str, Any]:
    return {k: v for k, v in asdict(result).items() if k != "weights"}


class UnknownTarget(ValueError):
    """A hand-off target that the saved trade-off table has no row for."""


class NoTradeOffs(LookupError):
    """No calibration with a trade-off table was saved for the embedder served."""


def calibration_of(payload: Mapping[str, Any] | None, embedder_id: str) -> dict[str, Any] | None:
    """The calibration in ``payload`` (a loaded calibration file) fitted for
    ``embedder_id``; None when there is none."""
    if not payload:
        return None
    entry = (payload.get("by_embedder") or {}).get(embedder_id, payload)
    if entry.get("embedder_id") != embedder_id or "result" not in entry:
        return None
    return {k: v for k, v in entry.items() if k != "by_embedder"}


def chosen_target_recall(payload: Mapping[str, Any] | None) -> float | None:
    """The hand-off target an operator chose (dashboard, ``calibrate --target-recall``),
    which later fits keep; None when nobody chose one."""
    chosen = (payload or {}).get("chosen_target") or {}
    target = chosen.get("target_handoff_recall")
    return float(target) if isinstance(target, int | float) else None


def choose_target(home: Path, embedder_id: str, target: float, *, chosen_by: str) -> dict[str, Any]:
    """Serve the row of the saved trade-off table whose target is ``target``: its
    threshold (with the same weights) becomes that of the calibration fitted for
    ``embedder_id``, and ``target`` is recorded as the operators' choice. Returns the
    calibration as now saved.

    Raises NoTradeOffs when no calibration with a table was saved for the embedder, and
    UnknownTarget when its table has no row for ``target``.
    """
    with updating(calibration_path(home)):
        return _choose_target(home, embedder_id, target, chosen_by)


def _choose_target(home: Path, embedder_id: str, target: float, chosen_by: str) -> dict[str, Any]:
    payload = load_calibration(home) or {}
    entry = calibration_of(payload, embedder_id)
    rows = (entry or {}).get("trade_offs") or []
    if entry is None or not rows:
        raise NoTradeOffs(f"no trade-off table was saved for embedder {embedder_id}")
    row = next((r for r in rows if abs(r["target_handoff_recall"] - target) < 1e-9), None)
    if row is None:
        offered = ", ".join(f"{r['target_handoff_recall']:.2f}" for r in rows)
        raise UnknownTarget(f"the trade-off table has no target {target!r} (it has {offered})")
    result = dict(entry["result"])
    result.update({k: v for k, v in row.items() if k in result and k != "weights"})
    entry.update(result=result, target_handoff_recall=row["target_handoff_recall"])
    updated = dict(payload)
    if payload.get("embedder_id") == embedder_id:
        updated.update(entry)  # the top level is the latest calibration: keep it in step
    updated["by_embedder"] = {**(payload.get("by_embedder") or {}), embedder_id: entry}
    updated["chosen_target"] = _choice(row["target_handoff_recall"], chosen_by)
    path = calibration_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, updated)
    return entry


def _choice(target: float, chosen_by: str) -> dict[str, Any]:
    return {"target_handoff_recall": target, "chosen_by": chosen_by, "chosen_at": time.time()}


def refit_on_files(
    knowledge: KnowledgeBase,
    home: Path,
    previous: dict[str, Any],
    config: TuningConfig,
    *,
    withhold_claims: bool = True,
) -> Path | None:
    """When ``previous`` (a loaded calibration) was fitted on labelled files that still
    exist, fit again on them for the pair ``knowledge`` serves, with the target recall and
    the price of a wrong answer it was fitted with; labelled files beat held-out topics.
    An operator's chosen target (:func:`chosen_target_recall`) beats the one it was fitted
    with. ``withhold_claims``: the engine's ``hand_off_claimed_actions`` (:func:`build_cases`).
    Returns the eval file refitted on, or None when there is nothing to refit on."""
    if previous.get("fitted_on") != "files":
        return None
    eval_path = Path(previous.get("eval_path", ""))
    out_of_scope_path = Path(previous.get("out_of_scope_path", ""))
    if not (eval_path.is_file() and out_of_scope_path.is_file()):
        return None
    run_calibration(
        knowledge,
        eval_path,
        out_of_scope_path,
        home,
        target_handoff_recall=chosen_target_recall(previous)
        or float(previous.get("target_handoff_recall", config.target_handoff_recall)),
        wrong_answer_cost=float(previous.get("wrong_answer_cost", config.wrong_answer_cost)),
        generic_off_topic=config.generic_off_topic,
        withhold_claims=withhold_claims,
    )
    return eval_path


def save_calibration(
    home: Path, calibration: Calibration, target_handoff_recall: float, **extra: Any
) -> None:
    """Write :func:`calibration_path`: this calibration, plus the latest one of every
    other embedder, so that rolling retrieval back to an earlier embedder restores the
    threshold fitted for it; the operators' chosen target is kept."""
    with updating(calibration_path(home)):
        _save_calibration(home, calibration, target_handoff_recall, extra)


def _save_calibration(
    home: Path, calibration: Calibration, target_handoff_recall: float, extra: dict[str, Any]
) -> None:
    payload: dict[str, Any] = asdict(calibration)
    payload["target_handoff_recall"] = target_handoff_recall
    payload.update(extra)
    previous = load_calibration(home) or {}
    if "chosen_target" in previous and "chosen_target" not in payload:
        payload["chosen_target"] = previous["chosen_target"]
    by_embedder = dict(previous.get("by_embedder") or {})
    if previous.get("embedder_id") and "result" in previous:
        earlier = {k: v for k, v in previous.items() if k not in ("by_embedder", "chosen_target")}
        by_embedder.setdefault(previous["embedder_id"], earlier)
    by_embedder[calibration.embedder_id] = {
        k: v for k, v in payload.items() if k != "chosen_target"
    }
    payload["by_embedder"] = by_embedder
    path = calibration_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, payload)


def load_calibration(home: Path) -> dict[str, Any] | None:
    path = calibration_path(home)
    if not path.is_file():
        path = _legacy_calibration_path(home)
    if not path.is_file():
        return None
    try:
        payload: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
    return payload


def _clean(text: str) -> str:
    return scrub(text).text


def format_result(
    result: CalibrationResult, target: float, set_replies: int = 0, withheld: int = 0
) -> Sequence[str]:
    return [
        f"validation: {result.in_scope} in-scope, {result.out_of_scope} out-of-scope questions"
        + (
            f" ({set_replies} turn{'s' if set_replies != 1 else ''} left out: small talk and"
            " requests for a person get the bot's set replies)"
            if set_replies
            else ""
        ),
        f"threshold: {result.threshold:.3f} (target hand-off recall {target:.2f})",
        f"hand-off recall (out of scope): {result.handoff_recall:.3f}",
        *(
            [
                f"hand-off recall (generic off-topic): {result.generic_handoff_recall:.3f}"
                f" of {result.generic_off_topic}"
            ]
            if result.generic_handoff_recall is not None
            else []
        ),
        f"in-scope answered: {result.answered_rate:.3f}"
        + (
            f" ({withheld} whose best answer claims an action, states the customer's case or"
            " asks for details go to a person whatever their confidence)"
            if withheld
            else ""
        ),
        f"answered correctly: {result.answered_accuracy:.3f}",
        f"wrong answers (all questions): {result.wrong_answer_rate:.3f}",
        f"signals used: {', '.join(signals_used(result.weights)) or 'none'}",
    ]


def format_trade_offs(payload: Mapping[str, Any]) -> Sequence[str]:
    """The table of other hand-off targets a saved calibration (``payload``) was shown
    with; empty for one saved before they were kept."""
    rows = payload.get("trade_offs") or []
    if not rows:
        return []
    chosen = payload.get("target_handoff_recall")
    lines = [
        "other targets, same signals (supportbot calibrate --target-recall R):",
        "  target  thresh  hand-off  answered  answered right  wrong (all)",
    ]
    for row in rows:
        mark = (
            "*" if chosen is not None and abs(row["target_handoff_recall"] - chosen) < 1e-9 else " "
        )
        lines.append(
            f"{mark} {row['target_handoff_recall']:>6.2f}  {row['threshold']:>6.3f}"
            f"  {row['handoff_recall']:>8.3f}  {row['answered_rate']:>8.3f}"
            f"  {row['answered_accuracy']:>14.3f}  {row['wrong_answer_rate']:>11.3f}"
        )
    return lines


def signals_used(weights: ConfidenceWeights | None) -> list[str]:
    """The confidence signals calibration kept (a weight above 0), in FEATURE_NAMES order."""
    if weights is None:
        return []
    return [name for name in FEATURE_NAMES if getattr(weights, name) > 0.0]
