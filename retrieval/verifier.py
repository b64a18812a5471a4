"""A reply verifier: how likely a retrieved past reply answers the customer's message.

Retrieval scores a hit by how close its stored question is to the message. Whether its
reply answers the message is another question: "can I ship it to Canada instead? I'm
moving there" is close to "Do you ship to Canada?", and its reply (a destination cannot be
changed after checkout) does not answer it. A cross-encoder reads the message and the hit
together, so it can tell. It is the default embedder's MiniLM weights with a scalar head,
trained only on the corpus's own logs: every logged customer turn is searched against the
other conversations, and each of its first hits is a positive when its reply gives the
logged reply's answer (the judge of ``supportbot calibrate``, :func:`answers_match`).

Its probability for the first hit is a confidence signal (``verifier_probability``), which
calibration keeps only where it earns its place (:func:`retrieval.confidence.select_features`).
Measured on the sample corpus (``python benchmarks/reranker.py sample``, a throwaway
variant of it; 1,273 logged turns trained on, 319 turns of held-out conversations): as a
predictor of "the first hit's reply is right", its AUROC was 0.787 on the held-out logs and
0.813 on the 197 evaluation turns, against 0.63 / 0.55 for the first hit's score and 0.60 /
0.60 for the margin. A confidence fitted on the held-out logs with it answered half the
evaluation turns with 7.6% of all turns wrong, against 17.3% from score and margin alone.
Used to re-rank the first five hits instead, it chose worse than retrieval's order on the
held-out logs (0.636 against 0.652 right), so it does not re-rank.

Training ends within its time limit; a verifier that did not reach its floor of steps is
not published. Measured on the sample: with 139-180 steps, wrong answers at the 0.90
hand-off target fell from 34.3% to 24-28% of all questions; with 55 steps (a busy machine)
calibration kept it and nothing was gained, for 15 ms more per search.

``supportbot train`` trains one with its validation and held-out conversations left out of
every pair (:class:`HeldOut`), so that its figures may use the verifier; one trained on all
the logs (``supportbot calibrate``) is left out of those figures.

Each training publishes a new version folder (``indexes/verifier/vNNNN``) through the
project's staged versions (retrieval.artifacts), renamed into place whole, so a crash leaves
the verifier served before (or none) as it was; the newest version is the one served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import shutil
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.artifacts import (
    list_versions,
    publish_folder,
    remove_stale_temporaries,
    staged_version,
    write_json,
)
from retrieval.pacing import while_time_allows
from retrieval.records import Query, RetrievedExchange

if TYPE_CHECKING:  # loads faiss
    from retrieval.knowledge import KnowledgeBase

log = logging.getLogger(__name__)

VERIFIER_FOLDER = "verifier"
_MANIFEST = "supportbot_verifier.json"
# The hits of each logged turn that training reads, as the benchmark measured.
_HITS = 5
# The characters of a reply the verifier reads: the answer is in its opening, and a shorter
# pair is faster to read (MiniLM's cost grows with the square of the length).
_REPLY_CHARS = 300
_MAX_TOKENS = 160
_BATCH = 16
_LEARNING_RATE = 1e-4
# The embeddings and first layers keep MiniLM's weights: what they know of words serves
# as it is, and their gradients are a third of a step's time.
_FROZEN_LAYERS = 2
# Versions kept: the newest and the one before, which a server may still be loading.
_KEPT_VERSIONS = 2
# Steps timed before judging whether the floor can be reached in the time left: after
# 5, a busy machine's first steps (3.0 s each) gave up on a floor the run would have
# reached at its later pace.
_PACE_STEPS = 15
# Seconds a step takes at the very least: about a second on two quiet cores of the machines
# measured. A deadline that cannot hold the floor even at half that is not tried: `make
# run`'s 5-minute train gave its verifier 1 minute for 120 steps, and spent it all.
_FASTEST_STEP_S = 0.5

Judge = Callable[[str, str], bool]


def verifier_folder(index_root: Path) -> Path:
    """Where the verifier's versions live: beside the index versions, which replicas
    share."""
    return index_root / VERIFIER_FOLDER


def candidate_folder(index_root: Path) -> Path:
    """Where a retraining cycle trains a verifier it has not judged yet: beside the served
    ones, on the same file system, so that publishing it is a rename."""
    return index_root / f"{VERIFIER_FOLDER}-candidate"


def publish_candidate(candidate: Verifier, index_root: Path) -> Verifier:
    """Publish ``candidate`` (:meth:`VerifierRecipe.train_candidate`) as the newest verifier
    under ``index_root``, renamed into place whole, and return it as published."""
    folder = verifier_folder(index_root)
    folder.mkdir(parents=True, exist_ok=True)
    published = publish_folder(candidate.folder, folder)
    shutil.rmtree(candidate.folder.parent, ignore_errors=True)
    _drop_older_versions(folder)
    log.info("verifier published at %s", published)
    return Verifier(published)


def _drop_older_versions(folder: Path) -> None:
    """Keep the newest :data:`_KEPT_VERSIONS` verifiers under ``folder``: a server still
    reading the one before a publish finds it until its next poll."""
    for older in list_versions(folder)[:-_KEPT_VERSIONS]:
        shutil.rmtree(older, ignore_errors=True)


def pair_text(hit: RetrievedExchange) -> str:
    """What the verifier reads of a hit beside the message."""
    return hit.customer_text + " [SEP] " + hit.agent_reply[:_REPLY_CHARS]


@dataclass(frozen=True)
class HeldOut:
    """Conversations whose messages a job measures the verifier on: none of them is asked
    in training."""

    conversation_ids: frozenset[str]

    @classmethod
    def of(cls, conversation_ids: Collection[str]) -> HeldOut:
        return cls(frozenset(conversation_ids))

    def fingerprint(self) -> str:
        """Names the set in a verifier's manifest, so a job can tell whether the verifier
        served learnt nothing of its questions."""
        digest = hashlib.sha256("\n".join(sorted(self.conversation_ids)).encode("utf-8"))
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class VerifierRecipe:
    """How the jobs train a verifier (the ``retrieval.verifier_*`` settings, resolved)."""

    base_model: str  # the folder of the cross-encoder's first weights
    judge: Judge  # whether a hit's reply gives a logged reply's answer
    minutes: float
    steps: int
    min_steps: int
    max_questions: int

    def train(
        self,
        knowledge: KnowledgeBase,
        *,
        within_s: float | None = None,
        held_out: HeldOut | None = None,
        again: bool = False,
    ) -> VerifierReport:
        """:func:`train_verifier` for ``knowledge``'s index, within ``minutes`` (or
        ``within_s`` seconds, when that is less), then served by ``knowledge``."""
        allowed = 60.0 * self.minutes if within_s is None else min(60.0 * self.minutes, within_s)
        report = train_verifier(
            knowledge,
            verifier_folder(knowledge.index_root),
            self.base_model,
            self.judge,
            deadline=time.monotonic() + allowed,
            max_questions=self.max_questions,
            max_steps=self.steps,
            min_steps=self.min_steps,
            held_out=held_out,
            again=again,
        )
        knowledge.follow_verifier()
        return report

    def train_candidate(
        self, knowledge: KnowledgeBase, *, within_s: float, held_out: HeldOut
    ) -> tuple[VerifierReport, Verifier | None]:
        """:func:`train_verifier` for ``knowledge``'s index within ``within_s`` seconds (and
        ``minutes``), kept apart as a candidate that nothing serves (under
        :func:`candidate_folder`) until :func:`publish_candidate` publishes it; returns the
        report and the candidate, None when it was not trained. Candidates left by a job
        killed before publishing are deleted first: the caller holds the retraining lock."""
        root = candidate_folder(knowledge.index_root)
        shutil.rmtree(root, ignore_errors=True)
        report = train_verifier(
            knowledge,
            root,
            self.base_model,
            self.judge,
            deadline=time.monotonic() + min(60.0 * self.minutes, within_s),
            max_questions=self.max_questions,
            max_steps=self.steps,
            min_steps=self.min_steps,
            held_out=held_out,
            again=True,  # the candidates' folder holds no verifier to keep
        )
        candidate = Verifier.published(root) if report.published else None
        if candidate is None:
            shutil.rmtree(root, ignore_errors=True)
        return report, candidate


@dataclass
class VerifierReport:
    questions: int = 0  # logged turns searched
    pairs: int = 0  # (message, hit) pairs with something to choose between
    steps: int = 0
    planned_steps: int = 0
    floor: int = 0  # the steps it must reach to be published
    seconds: float = 0.0
    published: bool = False
    kept_version: int | None = None  # the index version of the verifier kept instead
    note: str = ""

    def line(self) -> str:
        if self.kept_version is not None:
            return (
                f"verifier:    kept the one trained on index version {self.kept_version}, the"
                " one served (the logs have not changed since)"
            )
        if not self.published:
            return f"verifier:    not trained: {self.note}"
        cut = "" if self.steps == self.planned_steps else " (stopped by the time limit)"
        return (
            f"verifier:    trained on {self.pairs} hits of {self.questions} logged turns,"
            f" {self.steps} of {self.planned_steps} steps{cut}, {self.seconds:.0f} s"
        )


def training_pairs(
    knowledge: KnowledgeBase,
    judge: Judge,
    *,
    max_questions: int,
    seed: int = 0,
    held_out: HeldOut | None = None,
) -> tuple[int, list[tuple[str, str, float]]]:
    """How many logged turns were searched, and the labelled (message, hit, is right) pairs
    of those whose first hits hold both right and wrong replies: a turn whose hits are all
    right or all wrong teaches nothing about telling them apart. No question of ``held_out``'s
    conversations is asked; their entries may be hits, as they are in serving: a question
    measured later is one the verifier never read (with the hits held out too, the sample's
    pairs fell from 5,510 to 1,249, a quarter of its held-out topics' size)."""
    unseen = held_out.conversation_ids if held_out is not None else frozenset()
    stored = knowledge.store.entries_by_id(knowledge.store.live_entry_ids())
    ids = [
        i
        for i in sorted(stored)
        if stored[i].entry.kind == "log" and stored[i].entry.conversation_id not in unseen
    ]
    random.Random(seed).shuffle(ids)
    ids = ids[:max_questions]
    entries = [stored[i].entry for i in ids]
    results = knowledge.search_batch(
        [Query(e.customer_text, e.context) for e in entries],
        _HITS,
        exclude_conversation_ids=[[e.conversation_id] for e in entries],
        # A verifier trained before would read every first hit: seconds of the budget.
        verify=False,
    )
    pairs: list[tuple[str, str, float]] = []
    for entry, hits in zip(entries, results, strict=True):
        labels = [float(judge(entry.agent_reply, h.agent_reply)) for h in hits]
        if 0 < sum(labels) < len(labels):
            pairs += [
                (entry.customer_text, pair_text(h), y) for h, y in zip(hits, labels, strict=True)
            ]
    return len(entries), pairs


def train_verifier(
    knowledge: KnowledgeBase,
    folder: Path,
    base_model: str,
    judge: Judge,
    *,
    deadline: float | None,
    max_questions: int = 2000,
    max_steps: int | None = None,
    min_steps: int = 0,
    min_pairs: int = 50,
    seed: int = 0,
    again: bool = False,
    held_out: HeldOut | None = None,
) -> VerifierReport:
    """Train a verifier on ``knowledge``'s logs from the cross-encoder weights at
    ``base_model`` (a folder) and publish it as the newest version under ``folder``; one
    epoch (at most ``max_steps``), or as many steps as end before ``deadline`` (a
    ``time.monotonic()`` instant).
    Publishes nothing when the logs give fewer than ``min_pairs`` pairs; when fewer than
    ``min_steps`` steps (or the whole epoch, if shorter) fit before the deadline, stopping as
    soon as its pace shows they cannot; and, unless ``again``, when the newest verifier was
    trained on the index version served now: the same logs would teach it the same
    (`calibrate --target-recall` only moves the target). ``held_out``: conversations whose
    questions are never asked (:func:`training_pairs`), recorded in the manifest.
    """
    started = time.monotonic()
    report = VerifierReport()
    served = knowledge.version.id if knowledge.version is not None else None
    newest = Verifier.published(folder)
    if (
        not again
        and served is not None
        and newest is not None
        and newest.manifest().get("index_version") == served
    ):
        report.kept_version = served
        return report
    log.info("reply verifier: training on the logs (searching each logged turn first)")
    report.questions, pairs = training_pairs(
        knowledge, judge, max_questions=max_questions, seed=seed, held_out=held_out
    )
    report.pairs = len(pairs)
    if len(pairs) < min_pairs:
        report.note = f"{len(pairs)} hits to learn from, fewer than {min_pairs}"
        return report
    steps = math.ceil(len(pairs) / _BATCH)
    floor = min(min_steps, steps if max_steps is None else min(steps, max_steps))
    if deadline is not None and time.monotonic() + floor * _FASTEST_STEP_S > deadline:
        left = max(deadline - time.monotonic(), 0.0)
        report.note = (
            f"the {floor} steps it needs take at least {floor * _FASTEST_STEP_S / 60:.1f}"
            f" minutes, and {left / 60:.1f} are left (retrieval.verifier_minutes gives it more"
            " time); the verifier served before, if any, stays"
        )
        log.info("reply verifier not trained: %s", report.note)
        return report
    import torch

    torch.manual_seed(seed)
    random.Random(seed + 1).shuffle(pairs)
    with _quiet_transformers():
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(base_model)
        model = AutoModelForSequenceClassification.from_pretrained(base_model, num_labels=1)
    for frozen in [model.base_model.embeddings, *model.base_model.encoder.layer[:_FROZEN_LAYERS]]:
        frozen.requires_grad_(False)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trained, lr=_LEARNING_RATE)
    model.train()
    batches = [pairs[start : start + _BATCH] for start in range(0, len(pairs), _BATCH)]
    batches = batches[:max_steps]
    report.planned_steps = len(batches)
    report.floor = min(min_steps, len(batches))
    _train_steps(model, tokenizer, optimiser, batches, deadline, report)
    if report.steps == 0 or report.steps < report.floor:
        report.note = _short_of_floor(report, started, deadline)
        log.info("reply verifier not published: %s", report.note)
        return report
    remove_stale_temporaries(folder)
    with staged_version(folder) as staged:
        model.save_pretrained(staged.path)
        tokenizer.save_pretrained(staged.path)
        report.seconds = time.monotonic() - started
        write_json(
            staged.path / _MANIFEST,
            {
                "base_model": base_model,
                "pairs": report.pairs,
                "steps": report.steps,
                "planned_steps": report.planned_steps,
                "index_version": served,
                "held_out": held_out.fingerprint() if held_out is not None else None,
                "trained_at": time.time(),
            },
        )
    _drop_older_versions(folder)
    report.published = True
    log.info("verifier published at %s: %s", staged.final, report.line())
    return report


def _train_steps(
    model: Any,
    tokenizer: Any,
    optimiser: Any,
    batches: Sequence[list[tuple[str, str, float]]],
    deadline: float | None,
    report: VerifierReport,
) -> None:
    import torch

    began = time.monotonic()
    warmed = began  # when the first step, slower than the others, ended
    for step in while_time_allows(len(batches), deadline):
        if deadline is not None and _PACE_STEPS <= report.steps < report.floor:
            # Stop as soon as the pace shows the floor is out of reach: the rest of the
            # time would be spent on a verifier that is not published.
            per_step = (time.monotonic() - warmed) / (report.steps - 1)
            if time.monotonic() + per_step * (report.floor - report.steps) > deadline:
                return
        batch = batches[step]
        encoded = _encoded(tokenizer, [p[0] for p in batch], [p[1] for p in batch])
        logits = model(**encoded).logits.squeeze(-1)
        target = torch.tensor([p[2] for p in batch])
        loss: Any = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        report.steps += 1
        report.seconds = time.monotonic() - began
        if report.steps == 1:
            warmed = time.monotonic()


def _short_of_floor(report: VerifierReport, started: float, deadline: float | None) -> str:
    if report.steps == 0:
        return "no training step fitted in the time left"
    allowed = "" if deadline is None else f" in the {(deadline - started) / 60:.1f} minutes allowed"
    return (
        f"at {report.seconds / report.steps:.1f} s a step, the {report.floor} steps it needs"
        f" do not fit{allowed} ({report.steps} trained; a busy machine trains slower, and"
        " retrieval.verifier_minutes gives it more time). Fewer steps measured no gain on the"
        " sample and cost 15 ms a search; the verifier served before, if any, stays"
    )


class Verifier:
    """A trained verifier, loaded on first use. Thread-safe; call from workers."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder  # its version folder: another publication has another one
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None

    @classmethod
    def published(cls, folder: Path) -> Verifier | None:
        """The newest verifier published under ``folder``, or None when there is none."""
        versions = [v for v in list_versions(folder) if (v / _MANIFEST).is_file()]
        return cls(versions[-1]) if versions else None

    def manifest(self) -> dict[str, Any]:
        """What training recorded of it (its pairs, steps and index version)."""
        try:
            return dict(json.loads((self.folder / _MANIFEST).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}

    def learnt_nothing_of(self, held_out: HeldOut) -> bool:
        """Whether it was trained without asking any of ``held_out``'s conversations'
        questions, so that figures measured on them may use it."""
        return self.manifest().get("held_out") == held_out.fingerprint()

    def load(self) -> None:
        """Load the model now rather than in a customer's search."""
        with self._lock:
            self._loaded()

    def _loaded(self) -> Any:
        if self._model is None:
            with _quiet_transformers():
                from transformers import AutoModelForSequenceClassification, AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(self.folder)
                self._model = AutoModelForSequenceClassification.from_pretrained(self.folder)
            self._model.eval()
        return self._model

    def probabilities(
        self, questions: Sequence[str], hits: Sequence[RetrievedExchange]
    ) -> list[float]:
        """For each message and hit, the probability that the hit's reply answers it."""
        if not questions:
            return []
        import torch

        with self._lock:
            model = self._loaded()
            encoded = _encoded(self._tokenizer, list(questions), [pair_text(h) for h in hits])
            with torch.no_grad():
                logits = model(**encoded).logits.squeeze(-1)
            return [float(p) for p in torch.sigmoid(logits).tolist()]


def _encoded(tokenizer: Any, questions: list[str], hits: list[str]) -> Any:
    """Message and hit pairs as the model reads them, in training and in serving alike."""
    return tokenizer(
        questions, hits, truncation=True, max_length=_MAX_TOKENS, padding=True, return_tensors="pt"
    )


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers reports the new scalar head as "MISSING ... newly initialized" at every
    training start: true, expected and noise to a user."""
    from transformers.utils import logging as transformers_logging_module

    transformers_logging: Any = transformers_logging_module

    before = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(before)
