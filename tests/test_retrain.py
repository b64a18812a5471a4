"""Retraining cycles: data assembly, warm start, the gate, promotion, rollback, the lock."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from finetune.cycles import CycleLock, CycleLockedError, CycleLog
from finetune.evaluate import EvalCase, score_replies
from finetune.examples import TrainingExample
from finetune.pipeline import GeneratorPaths
from finetune.prompting import PromptRequest
from finetune.registry import AdapterRecord, ModelRegistry
from finetune.retrain import (
    FeedbackRecord,
    GateSet,
    RetrainPolicy,
    TrainJob,
    assemble_training_set,
    decide,
    gate_figures,
    mix_feedback,
    rollback,
    run_cycle,
    training_examples,
)
from retrieval.facts import extract_facts
from retrieval.processes import LockOwner
from retrieval.records import Conversation, LogMessage, RetrievedExchange
from tests.support.finetune_fakes import (
    InMemoryRetriever,
    toy_conversations,
)
from tests.support.retraining import CONFIG, CORRECTION, LOGS, POLICY, make_home


@pytest.fixture
def paths(tmp_path: Path) -> GeneratorPaths:
    return make_home(tmp_path / "home")


REPO = Path(__file__).resolve().parent.parent
FEEDBACK = [
    FeedbackRecord(
        "approved",
        "turn:t1",
        (LogMessage("customer", "hello"), LogMessage("agent", "Hi! How can I help?")),
        "where is my order",
        "Orders ship in 2 working days. Track it at shop.com/track. Article KB-SHP-02.",
        created_at=90.0,
    ),
    CORRECTION,
    FeedbackRecord("rejected", "turn:t3", (), "do you sell kayaks", "Yes, $5.", created_at=95.0),
]


def _live(paths: GeneratorPaths) -> AdapterRecord | None:
    registry = ModelRegistry.open(paths)
    try:
        return registry.live_adapter()
    finally:
        registry.close()


def _cycles(paths: GeneratorPaths) -> list[Any]:
    log = CycleLog.open(paths)
    try:
        return log.cycles()
    finally:
        log.close()


def _cycle(paths: GeneratorPaths, **overrides: Any) -> Any:
    """``run_cycle`` on ``logs`` (default LOGS, retrieved in memory) with the test settings;
    ``overrides`` replace any other argument."""
    logs = overrides.pop("logs", LOGS)
    arguments: dict[str, Any] = {
        "logs": logs,
        "feedback": FEEDBACK,
        "retriever": InMemoryRetriever(logs),
        "config": CONFIG,
        "policy": POLICY,
        "paths": paths,
        "progress": False,
    }
    return run_cycle(**{**arguments, **overrides})


def _lora_b(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return {
        k: v
        for k, v in load_file(str(folder / "adapter_model.safetensors")).items()
        if "lora_B" in k
    }


def _scripted(live_figures: dict[str, float], candidate_figures: dict[str, float]) -> Any:
    """An evaluator that reports fixed figures: the test decides which adapter is better."""
    seen: list[tuple[str, int, int]] = []

    def evaluate(adapter: AdapterRecord, gate: GateSet) -> dict[str, float]:
        seen.append((adapter.folder.name, len(gate.held_out), len(gate.corrections)))
        return dict(live_figures if adapter.folder.name == "v0001" else candidate_figures)

    evaluate.seen = seen  # type: ignore[attr-defined]
    return evaluate


# -- the training set ----------------------------------------------------------------------


def test_training_set_weights_feedback_and_leaves_rejected_out() -> None:
    data = assemble_training_set(LOGS, FEEDBACK, POLICY, CONFIG)
    ids = [c.id for c in data.train]
    assert sum(i.startswith("feedback:turn:t1#") for i in ids) == 2  # approved, weight 2
    assert sum(i.startswith("feedback:correction:1#") for i in ids) == 3  # corrected, weight 3
    assert not any("t3" in i for i in ids)  # rejected: left out
    replies = [m.text for c in data.train for m in c.messages if m.role == "agent"]
    assert "Yes, $5." not in replies
    # The held-out share is fixed by the conversation ids and never trained on.
    again = assemble_training_set(list(reversed(LOGS)), [], POLICY, CONFIG)
    assert {c.id for c in again.held_out} == {c.id for c in data.held_out} != set()
    assert not {c.id for c in data.held_out} & set(ids)
    assert [c.messages[-1].text for c in data.corrections] == [CORRECTION.reply]
    assert data.counts == {
        "log_conversations": len(LOGS) - len(data.held_out),
        "held_out_conversations": len(data.held_out),
        "approved": 1,
        "corrected": 1,
        "rejected": 1,
        "training_conversations": len(LOGS) - len(data.held_out) + 5,
        "gate_corrections": 1,
    }


def test_corrections_are_learnt_as_served_and_make_up_the_feedback_share(tmp_path: Path) -> None:
    config = CONFIG.model_copy(update={"retrieved_k": 2})
    data = assemble_training_set(LOGS, FEEDBACK, POLICY, config)
    # The retriever does not hold the correction (a knowledge base does, as a curated answer).
    job = TrainJob(
        data=data,
        retriever=InMemoryRetriever(LOGS),
        config=config,
        paths=GeneratorPaths.under(tmp_path),
        live=None,
        budget_minutes=1.0,
        feedback_share=0.4,
    )
    examples, validation, trained_on = training_examples(job)

    corrections = [e for e in examples if e.target == CORRECTION.reply]
    approved = [e for e in examples if e.conversation_id.startswith("feedback:turn:t1#")]
    assert corrections and approved
    for example in corrections:
        # Shown as the bot serves it: the corrected answer is the first evidence, then a
        # retrieved reply that does not back it; never the RAFT prompt without it.
        first, *rest = example.request.evidence
        assert (first.kind, first.agent_reply) == ("curated", CORRECTION.reply)
        assert len(rest) == 1 and CORRECTION.reply not in {h.agent_reply for h in rest}
        assert example.request.customer_text == CORRECTION.customer_text
    # Feedback is at least the share asked for, corrections and approvals 3 : 2 as weighted.
    feedback = [e for e in examples if e.conversation_id.startswith("feedback:")]
    assert len(feedback) / len(examples) >= 0.4 > (len(feedback) - 2) / (len(examples) - 2)
    assert abs(len(corrections) / len(approved) - 3 / 2) < 0.2
    # Rejected replies are nowhere; of the feedback only the corrections validate (in
    # their training share: the cycle exists to learn them); the manifest lists it.
    assert "Yes, $5." not in {e.target for e in [*examples, *validation]}
    validating_feedback = [e for e in validation if e.conversation_id.startswith("feedback:")]
    assert validating_feedback and {e.target for e in validating_feedback} == {CORRECTION.reply}
    assert len(validating_feedback) / len(validation) >= 0.4
    validated = {e.conversation_id for e in validation} - {
        e.conversation_id for e in validating_feedback
    }
    assert {c.id for c in trained_on} == {c.id for c in data.train} - validated


def _logs_job(
    logs: list[Conversation], paths: GeneratorPaths, *, live: AdapterRecord | None
) -> TrainJob:
    """A cycle's job over ``logs`` and FEEDBACK, with no share reserved for the feedback."""
    return TrainJob(
        data=assemble_training_set(logs, FEEDBACK, POLICY, CONFIG),
        retriever=InMemoryRetriever(logs),
        config=CONFIG,
        paths=paths,
        live=live,
        budget_minutes=POLICY.budget_minutes,
        feedback_share=0.0,
    )


def test_a_cycle_builds_its_log_examples_within_its_deadline_and_its_feedback_whole(
    paths: GeneratorPaths,
) -> None:
    # 240 conversations: more log turns than one batch of evidence retrieval (64).
    job = _logs_job(toy_conversations(repeats=48), paths, live=None)
    whole, whole_validation, trained_on = training_examples(job)
    # A deadline already past: the first batch of log turns only, the feedback all the same.
    cut, cut_validation, cut_trained_on = training_examples(job, deadline=time.monotonic() - 1)

    def from_logs(examples: list[TrainingExample]) -> list[TrainingExample]:
        return [e for e in examples if not e.conversation_id.startswith("feedback:")]

    assert 0 < len(from_logs(cut)) <= 64 < len(from_logs(whole))
    assert {e.target for e in cut} >= {CORRECTION.reply}
    assert len(cut) - len(from_logs(cut)) == len(whole) - len(from_logs(whole))
    assert 0 < len(cut_validation) <= len(whole_validation)
    # Listed as trained on: every conversation the logs' examples could come from.
    assert {c.id for c in cut_trained_on} == {c.id for c in trained_on}


def test_a_cycle_validates_on_a_share_it_neither_trains_on_nor_holds_out(
    paths: GeneratorPaths,
) -> None:
    # Twenty conversations: two held out at 20 %, and validation must still find some.
    logs = toy_conversations(repeats=4)
    job = _logs_job(logs, paths, live=_live(paths))
    data = job.data
    examples, validation, trained_on = training_examples(job)
    # (The corrections validate as well as train: the test above; these are the logs.)
    val_ids = {e.conversation_id for e in validation} - {
        e.conversation_id for e in validation if e.conversation_id.startswith("feedback:")
    }
    held_ids = {c.id for c in data.held_out}
    assert validation and val_ids and held_ids
    assert not val_ids & held_ids
    assert not val_ids & {c.id for c in trained_on}
    assert not val_ids & {e.conversation_id for e in examples}
    # Stable across runs: the same conversations validate whatever the order of the logs.
    again = dataclasses.replace(job, data=assemble_training_set(logs[::-1], [], POLICY, CONFIG))
    assert {
        e.conversation_id
        for e in training_examples(again)[1]
        if not e.conversation_id.startswith("feedback:")
    } == val_ids

    # The cycle's training watched a validation loss (early stopping has something to use),
    # given a budget whose 3% pays for a validation batch (max_epochs=1 still ends it).
    report = _cycle(
        paths,
        logs=logs,
        evaluate=_scripted({"held_out_rouge_l": 0.5}, {"held_out_rouge_l": 0.5}),
        budget_minutes=2.0,
    )
    assert report.candidate is not None
    assert report.candidate.metrics["training"]["best_val_loss"] is not None


@pytest.mark.parametrize(
    ("logs", "feedback", "share", "expected"),
    [
        (70, 3, 0.3, 30),  # repeated: 3 -> 30 of 100
        (70, 3, 0.0, 3),  # no share asked: the weighted copies only
        (10, 9, 0.3, 9),  # already more than the share
        (0, 2, 0.5, 2),
    ],
)
def test_mix_feedback_repeats_feedback_up_to_its_share(
    logs: int, feedback: int, share: float, expected: int
) -> None:
    def example(name: str) -> TrainingExample:
        return TrainingExample(PromptRequest("where is my order"), "Shipped.", name, False)

    log_examples = [example(f"log{i}") for i in range(logs)]
    feedback_examples = [example(f"feedback:{i}") for i in range(feedback)]
    mixed = mix_feedback(log_examples, feedback_examples, share, seed=0)
    ids = [e.conversation_id for e in mixed]
    assert ids[:logs] == [f"log{i}" for i in range(logs)]
    assert len(ids) - logs == expected
    counts = [ids.count(f"feedback:{i}") for i in range(feedback)]
    assert max(counts) - min(counts) <= 1  # every one repeated alike
    with pytest.raises(ValueError, match="share"):
        mix_feedback(log_examples, feedback_examples, 1.0, seed=0)


# -- the gate figures -------------------------------------------------------------------------

ANSWER = "Express delivery costs $9.95 and arrives next day. Article KB-SHP-04."
HANDOFF = CONFIG.handoff_reply


def _case(evidence_reply: str, reference: str = ANSWER) -> EvalCase:
    hit = RetrievedExchange(0.9, "c#1", "is there express delivery", evidence_reply, "log", "c")
    return EvalCase(PromptRequest("how fast can you ship", (), (hit,)), reference, "x")


@pytest.mark.parametrize(
    ("reply", "case", "grounded", "states_facts"),
    [
        (ANSWER, _case(ANSWER), True, True),
        # Polite and fact-free: invents nothing, and answers nothing either.
        ("Thanks for asking, happy to help with delivery!", _case(ANSWER), False, False),
        ("Express costs $12.00. Article KB-SHP-04.", _case(ANSWER), False, False),  # invented
        (HANDOFF, _case("We ship worldwide."), True, False),  # nothing to take the facts from
        (HANDOFF, _case(ANSWER), False, False),  # the answer was there to take
        ("You are welcome!", _case("Happy trails!", "You are welcome, happy trails!"), True, None),
    ],
    ids=["answer", "fact-free", "invented", "handoff-no-evidence", "handoff-with-it", "no-facts"],
)
def test_gate_figures_count_fact_free_replies_as_neither_grounded_nor_right(
    reply: str, case: EvalCase, grounded: bool, states_facts: bool | None
) -> None:
    scores = score_replies("x", [reply], [case], handoff_reply=HANDOFF)
    assert scores.grounded_share == float(grounded)
    assert scores.facts_share == (None if states_facts is None else float(states_facts))


def _without_facts(text: str) -> str:
    return " ".join(word for word in text.split() if not extract_facts(word))


def test_cycle_refuses_a_candidate_that_writes_the_corrections_without_their_facts(
    paths: GeneratorPaths,
) -> None:
    # The knowledge base holds the correction, as it does once an operator saved it.
    curated = Conversation(
        "correction:1",
        (LogMessage("customer", CORRECTION.customer_text), LogMessage("agent", CORRECTION.reply)),
    )
    before = _live(paths)

    def answer_from_evidence(requests: list[PromptRequest]) -> list[str]:
        return [r.evidence[0].agent_reply if r.evidence else HANDOFF for r in requests]

    def evaluate(adapter: AdapterRecord, gate: GateSet) -> dict[str, float]:
        # The live adapter carries the evidence's answer over; the candidate writes the same
        # words with every code, link and amount left out.
        if adapter.folder.name == "v0001":
            return gate_figures(gate, answer_from_evidence, handoff_reply=HANDOFF)
        return gate_figures(
            gate,
            lambda requests: [_without_facts(r) for r in answer_from_evidence(requests)],
            handoff_reply=HANDOFF,
        )

    # A tolerance wide enough for the words the candidate dropped: ROUGE-L alone passes it.
    policy = RetrainPolicy(**{**POLICY.__dict__, "tolerance": 0.3})
    report = _cycle(
        paths,
        retriever=InMemoryRetriever([*LOGS, curated]),
        policy=policy,
        evaluate=evaluate,
    )
    record = report.record
    assert record.status == "kept" and _live(paths) == before
    candidate, live = record.figures["candidate"], record.figures["live"]
    assert live["corrections_facts"] == live["corrections_grounded"] == 1.0
    assert candidate["corrections_facts"] == candidate["corrections_grounded"] == 0.0
    assert set(record.figures["worse"]) == {
        "held_out_grounded",
        "corrections_grounded",
        "corrections_facts",
    }


@pytest.mark.parametrize(
    ("candidate", "live", "promote"),
    [
        ({"held_out_rouge_l": 0.50, "corrections_rouge_l": 0.9}, {"held_out_rouge_l": 0.40}, True),
        ({"held_out_rouge_l": 0.38}, {"held_out_rouge_l": 0.40}, True),  # within tolerance
        ({"held_out_rouge_l": 0.30}, {"held_out_rouge_l": 0.40}, False),
        (
            {"held_out_rouge_l": 0.5, "held_out_grounded": 0.5},
            {"held_out_rouge_l": 0.4, "held_out_grounded": 0.9},
            False,
        ),
        ({"held_out_rouge_l": 0.1}, None, True),  # nothing live yet
    ],
)
def test_gate_decision(
    candidate: dict[str, float], live: dict[str, float] | None, promote: bool
) -> None:
    decision = decide(candidate, live, tolerance=0.05)
    assert decision.promote is promote
    assert bool(decision.worse) is (not promote)


# -- whole cycles ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate_figures", "status"),
    [
        (
            {"held_out_rouge_l": 0.61, "held_out_grounded": 1.0, "corrections_rouge_l": 0.9},
            "promoted",
        ),
        ({"held_out_rouge_l": 0.20, "held_out_grounded": 1.0, "corrections_rouge_l": 0.9}, "kept"),
    ],
    ids=["better", "worse"],
)
def test_cycle_promotes_a_better_adapter_and_refuses_a_worse_one(
    paths: GeneratorPaths, candidate_figures: dict[str, float], status: str
) -> None:
    live_figures = {"held_out_rouge_l": 0.55, "held_out_grounded": 1.0, "corrections_rouge_l": 0.1}
    before = _live(paths)
    assert before is not None and before.folder.name == "v0001"
    evaluate = _scripted(live_figures, candidate_figures)
    report = _cycle(
        paths,
        evaluate=evaluate,
    )
    # A real warm-started adapter was trained, published and registered either way.
    assert report.candidate is not None and report.candidate.folder.name == "v0002"
    assert report.candidate.parent_id == before.id
    assert report.candidate.metrics["retrain"]["warm_start_from"] == "v0001"
    # Both were judged on the same gate set: held-out conversations plus the correction.
    assert {s[0] for s in evaluate.seen} == {"v0001", "v0002"}
    assert len({s[1:] for s in evaluate.seen}) == 1 and evaluate.seen[0][2] == 1
    live = _live(paths)
    assert live is not None
    assert live.folder.name == ("v0002" if status == "promoted" else "v0001")
    [record] = _cycles(paths)
    assert record.status == status and record.live_adapter_id == before.id
    assert record.candidate_adapter_id == report.candidate.id
    assert record.data["approved"] == 1 and record.data["rejected"] == 1
    assert record.figures["candidate"] == candidate_figures
    assert record.figures["live"] == live_figures
    assert status in report.format_table()
    # The copy baseline was measured on the same gate set and recorded with the candidate,
    # for the server's decision to serve it (finetune.serving_policy).
    copy = record.figures["copy"]
    assert copy["held_out_examples"] == evaluate.seen[0][1] and copy["held_out_rouge_l"] > 0.0
    registry = ModelRegistry.open(paths)
    try:
        gate = registry.adapter(report.candidate.id).metrics["gate"]
    finally:
        registry.close()
    assert gate == {"candidate": candidate_figures, "copy": copy}


def test_new_adapter_starts_from_the_live_weights(paths: GeneratorPaths) -> None:
    report = _cycle(
        paths,
        config=CONFIG.model_copy(update={"learning_rate": 1e-5}),
        evaluate=_scripted({"held_out_rouge_l": 0.5}, {"held_out_rouge_l": 0.5}),
    )
    assert report.candidate is not None
    live_b, new_b = _lora_b(paths.adapters / "v0001"), _lora_b(report.candidate.folder)
    assert live_b.keys() == new_b.keys() and live_b
    for name, weights in live_b.items():
        # A fresh LoRA starts with B = 0; a warm start keeps the live adapter's B.
        assert float((new_b[name] - weights).abs().max()) < 0.05 * float(weights.abs().max())


def test_rollback_walks_back_to_the_previous_version(paths: GeneratorPaths) -> None:
    report = _cycle(
        paths,
        feedback=[],
        evaluate=_scripted({"held_out_rouge_l": 0.1}, {"held_out_rouge_l": 0.9}),
    )
    assert report.promoted and _live(paths).folder.name == "v0002"  # type: ignore[union-attr]
    record = rollback(paths)
    assert _live(paths).folder.name == "v0001"  # type: ignore[union-attr]
    assert record.kind == "rollback" and "v0002 to v0001" in record.reason
    with pytest.raises(LookupError, match="no parent"):
        rollback(paths)  # v0001 was the first version
    rollback(paths, to=report.candidate.id)  # type: ignore[union-attr]
    assert _live(paths).folder.name == "v0002"  # type: ignore[union-attr]
    assert [c.kind for c in _cycles(paths)] == ["rollback", "rollback", "cycle"]


# -- the lock --------------------------------------------------------------------------------


def test_lock_refuses_a_second_cycle_and_takes_over_a_stale_one(tmp_path: Path) -> None:
    database = tmp_path / "supportbot.db"
    with CycleLock(database, stale_after_s=60):
        with pytest.raises(CycleLockedError, match="already running"):
            CycleLock(database, stale_after_s=60).acquire()
        # Another host's owner is judged by its heartbeat only.
        other = CycleLock(database, stale_after_s=60, owner=LockOwner(1, "elsewhere", "1"))
        with pytest.raises(CycleLockedError):
            other.acquire()
    remote = CycleLock(database, stale_after_s=0.5, heartbeat_s=60, owner=LockOwner(1, "far", ""))
    remote.acquire()
    remote._stop.set()  # a hung owner: no more heartbeats
    time.sleep(0.7)
    with CycleLock(database, stale_after_s=0.5) as taker:
        assert taker.abandoned == []
    remote.release()


_KILLED_CYCLE = """
import json, os, signal, sys
from pathlib import Path
from finetune.config import GeneratorConfig
from finetune.pipeline import GeneratorPaths
from finetune.retrain import RetrainPolicy, run_cycle
from tests.support.finetune_fakes import InMemoryRetriever, toy_conversations

home, config, policy = Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
logs = toy_conversations(repeats=2)

def die(step, loss):
    if step == 1:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: like kill -9

run_cycle(
    logs=logs, feedback=[], retriever=InMemoryRetriever(logs),
    config=GeneratorConfig(**config), policy=RetrainPolicy(**policy),
    paths=GeneratorPaths.under(home), progress=False, on_step=die,
)
"""


def test_a_killed_cycle_leaves_the_live_version_and_the_next_one_runs(
    paths: GeneratorPaths,
) -> None:
    home = paths.database.parent
    policy = {**POLICY.__dict__, "lock_stale_s": 3600.0}
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILLED_CYCLE,
            str(home),
            CONFIG.model_dump_json(),
            json.dumps(policy),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert _live(paths).folder.name == "v0001"  # type: ignore[union-attr]
    [killed] = _cycles(paths)
    assert killed.status == "running"  # nobody recorded the end: it was killed
    assert [p.name for p in paths.adapters.iterdir()] == ["v0001"]

    # The next cycle takes the dead owner's lock at once (not after the hour-long timeout)
    # and runs with the real evaluation on the tiny models.
    report = _cycle(
        paths,
        policy=RetrainPolicy(**policy),
    )
    newest, killed = _cycles(paths)
    assert killed.status == "abandoned"
    assert newest.status in ("promoted", "kept") and newest.id == report.record.id
    figures = newest.figures
    for key in ("held_out_rouge_l", "held_out_grounded", "corrections_rouge_l"):
        assert 0.0 <= figures["candidate"][key] <= 1.0
        assert 0.0 <= figures["live"][key] <= 1.0
    assert figures["candidate"]["corrections_examples"] == 1
    live = _live(paths)
    assert live is not None
    assert live.folder.name == ("v0002" if report.promoted else "v0001")


def test_only_unreferenced_folders_of_dead_writers_are_leftovers(tmp_path: Path) -> None:
    from retrieval.leftovers import WRITER_FILE, dead_writers_folders
    from retrieval.processes import writer_marker

    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = {"pid": int(done.stdout), "host": socket.gethostname(), "start": ""}
    root = tmp_path / "adapters"
    for name, writer in [("v0001", dead), ("v0002", dead), ("v0003", writer_marker())]:
        (root / name).mkdir(parents=True)
        (root / name / WRITER_FILE).write_text(json.dumps(writer), encoding="utf-8")
    (root / "v0004").mkdir()  # written by a job that leaves no marker (`supportbot train`)
    # v0001 is recorded under a relative path, as a job started elsewhere would record it.
    assert dead_writers_folders(root, ["home/models/adapters/v0001"]) == [root / "v0002"]
    assert dead_writers_folders(root, []) == [root / "v0001", root / "v0002"]


_KILLED_BEFORE_REGISTERING = """
import json, os, signal, sys
from pathlib import Path
from finetune.config import GeneratorConfig
from finetune.pipeline import GeneratorPaths
from finetune.registry import ModelRegistry
from finetune.retrain import RetrainPolicy, run_cycle
from tests.support.finetune_fakes import InMemoryRetriever, toy_conversations

home, config, policy = Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
logs = toy_conversations(repeats=2)

def die(self, *args, **kwargs):  # the candidate is published: die before it is registered
    os.kill(os.getpid(), signal.SIGKILL)

ModelRegistry.register_adapter = die
run_cycle(
    logs=logs, feedback=[], retriever=InMemoryRetriever(logs),
    config=GeneratorConfig(**config), policy=RetrainPolicy(**policy),
    paths=GeneratorPaths.under(home), progress=False,
)
"""


def test_the_next_cycle_deletes_the_candidate_a_killed_one_never_registered(
    paths: GeneratorPaths,
) -> None:
    from finetune.retrain import train_candidate
    from retrieval.leftovers import WRITER_FILE
    from retrieval.processes import writer_marker

    better = {"held_out_rouge_l": 0.9, "held_out_grounded": 1.0}
    # A first cycle promotes v0002: v0001 is now the previously live version, kept for rollback.
    first = _cycle(
        paths,
        evaluate=_scripted({"held_out_rouge_l": 0.1, "held_out_grounded": 1.0}, better),
    )
    assert first.promoted and _live(paths).folder.name == "v0002"  # type: ignore[union-attr]

    home = paths.database.parent
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILLED_BEFORE_REGISTERING,
            str(home),
            CONFIG.model_dump_json(),
            json.dumps(POLICY.__dict__),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    orphan = paths.adapters / "v0003"
    assert (orphan / "adapter_model.safetensors").is_file() and (orphan / WRITER_FILE).is_file()
    registry = ModelRegistry.open(paths)
    try:
        assert [a.folder.name for a in registry.adapters()] == ["v0001", "v0002"]
    finally:
        registry.close()
    # Another job publishing right now (its process alive) is about to register its folder:
    # unreferenced too, but not a dead cycle's, so it stays.
    publishing = paths.adapters / "v0007"
    shutil.copytree(orphan, publishing)
    (publishing / WRITER_FILE).write_text(json.dumps(writer_marker()), encoding="utf-8")

    seen: list[set[str]] = []

    def train(job: TrainJob) -> AdapterRecord:
        seen.append({p.name for p in paths.adapters.iterdir()})
        return train_candidate(job)

    report = _cycle(
        paths,
        train=train,
        evaluate=lambda adapter, gate: {
            "held_out_rouge_l": 0.5 if adapter.folder.name == "v0002" else 0.1
        },
    )
    # Gone before the new candidate trained; the live, the previously live and the
    # other job's folder stay.
    assert seen == [{"v0001", "v0002", "v0007"}]
    assert report.record.data["abandoned_adapters_removed"] == 1
    assert report.candidate is not None and report.candidate.folder.name == "v0008"
    assert _live(paths).folder.name == "v0002"  # type: ignore[union-attr]
    assert {p.name for p in paths.adapters.iterdir()} == {"v0001", "v0002", "v0007", "v0008"}
    assert [c.status for c in _cycles(paths)] == ["kept", "abandoned", "promoted"]


# -- the bot's side: feedback export, hot swap, commands -------------------------------------


async def test_feedback_export_reads_reviews_and_corrections(tmp_path: Path) -> None:
    from bot.core.types import FlagReason, FlagStatus
    from bot.feedback import export_feedback
    from bot.store.conversations import ConversationDatabase

    database = tmp_path / "supportbot.db"
    assert export_feedback(database) == []  # before the bot ever ran
    store = ConversationDatabase(database)
    await store.open()
    try:
        conv = await store.create_conversation("web")
        await store.add_turn(conv.id, "customer", "hello")
        greet = await store.add_turn(conv.id, "bot", "Hi! How can I help?")
        await store.add_turn(conv.id, "customer", "where is my order")
        good = await store.add_turn(conv.id, "bot", "Orders ship in 2 days.")
        await store.add_turn(conv.id, "customer", "do you sell kayaks")
        bad = await store.add_turn(conv.id, "bot", "Yes, $5.")
        await store.add_turn(conv.id, "customer", "can I pay with a gift card")
        fixed = await store.add_turn(conv.id, "bot", "No idea.")
        for turn, status in (
            (greet, FlagStatus.APPROVED),
            (good, FlagStatus.APPROVED),
            (bad, FlagStatus.REJECTED),
        ):
            await store.add_flag(turn.id, FlagReason.LOW_CONFIDENCE)
            await store.resolve_turn_flags(turn.id, status, "ann")
        # A later review wins: the greeting is rejected after all.
        await store.add_flag(greet.id, FlagReason.THUMBS_DOWN)
        await store.resolve_turn_flags(greet.id, FlagStatus.REJECTED, "bob")
        await store.add_flag(fixed.id, FlagReason.HANDOFF)
        await store.add_correction(
            "can I pay with a gift card",
            "Yes, online and in stores.",
            created_by="ann",
            turn_id=fixed.id,
        )
        await store.resolve_turn_flags(fixed.id, FlagStatus.CORRECTED, "ann")
        # A correction made by mistake, edited, then withdrawn: nothing learns from it.
        mistake = await store.add_correction(
            "do you sell kayaks", "<b>test</b>", created_by="ann", turn_id=bad.id
        )
        await store.edit_correction(mistake.id, "kayaks?", "Kayaks: no.", edited_by="ann")
        await store.withdraw_correction(mistake.id, withdrawn_by="bob")
    finally:
        await store.aclose()

    records = {r.source_id: r for r in export_feedback(database)}
    assert {k: r.kind for k, r in records.items()} == {
        f"turn:{greet.id}": "rejected",
        f"turn:{good.id}": "approved",
        f"turn:{bad.id}": "rejected",
        "correction:1": "corrected",
    }
    approved = records[f"turn:{good.id}"]
    assert approved.customer_text == "where is my order"
    assert approved.reply == "Orders ship in 2 days."
    assert approved.history == (
        LogMessage("customer", "hello"),
        LogMessage("agent", "Hi! How can I help?"),
    )
    corrected = records["correction:1"]
    assert corrected.reply == "Yes, online and in stores."
    assert corrected.history[-1] == LogMessage("agent", "Yes, $5.")  # what came before


async def test_feedback_export_scrubs_what_an_operator_wrote_to_a_customer(tmp_path: Path) -> None:
    # Stored as typed (it may give the shop's own number), an operator's message greets
    # the customer by name and repeats her details: none of it is trained on.
    from bot.core.types import FlagReason, FlagStatus
    from bot.feedback import export_feedback
    from bot.store.conversations import ConversationDatabase

    database = tmp_path / "supportbot.db"
    store = ConversationDatabase(database)
    await store.open()
    try:
        conv = await store.create_conversation("web")
        await store.add_turn(conv.id, "customer", "I was charged twice")
        await store.add_turn(
            conv.id,
            "agent",
            "Hi Dana, refunded. I'll mail dana.roe@example.com or call 0161 496 0000.",
        )
        await store.add_turn(conv.id, "customer", "how long until I see it?")
        answered = await store.add_turn(conv.id, "bot", "Refunds take 5-7 business days.")
        await store.add_flag(answered.id, FlagReason.LOW_CONFIDENCE)
        await store.resolve_turn_flags(answered.id, FlagStatus.APPROVED, "ann")
    finally:
        await store.aclose()

    (record,) = export_feedback(database)
    operator = record.history[-1]
    assert operator.role == "agent" and "refunded" in operator.text
    for detail in ("Dana", "dana.roe@example.com", "0161 496 0000"):
        assert detail not in operator.text
    assert record.history[0] == LogMessage("customer", "I was charged twice")


class _GatedGenerator:
    """Streams "<version>:" then "done" once ``gate`` is set."""

    def __init__(self, version: str, *, open_gate: bool = False) -> None:
        import asyncio

        self.version = version
        self.gate = asyncio.Event()
        if open_gate:
            self.gate.set()

    async def stream(self, request: Any) -> Any:
        yield f"{self.version}:"
        await self.gate.wait()
        yield "done"


async def test_swap_finishes_replies_in_flight_on_the_old_model() -> None:
    import asyncio

    from bot.adapters.swappable import SwappableGenerator
    from bot.core.types import GenerationRequest

    request = GenerationRequest("where is my order")
    holder, closed = SwappableGenerator(), []
    old, new = _GatedGenerator("v1"), _GatedGenerator("v2", open_gate=True)
    holder.replace(old, close=lambda: closed.append("v1"))
    in_flight = holder.stream(request)
    assert await anext(in_flight) == "v1:"

    previous = holder.replace(new, close=lambda: closed.append("v2"))
    assert previous is not None and holder.version == "v2"
    retiring = asyncio.create_task(holder.retire(previous, timeout=10))
    # A new request goes to the new model at once, while the old reply is still streaming.
    assert [p async for p in holder.stream(request)] == ["v2:", "done"]
    await asyncio.sleep(0.05)
    assert not retiring.done() and closed == []
    old.gate.set()
    assert [p async for p in in_flight] == ["done"]  # finished on the old model
    await asyncio.wait_for(retiring, 5)
    assert closed == ["v1"]
    await holder.aclose()
    assert closed == ["v1", "v2"]


async def test_running_server_follows_promotion_and_rollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    import bot.app
    from bot.app import SWAPPABLE, create_app, started
    from bot.settings import load_settings
    from bot.web import ENGINE
    from tests.support.fakes import FakeRetriever
    from tests.support.finetune_fakes import tiny_live_loader

    loads: list[str] = []
    fake_load = tiny_live_loader(LOGS, CONFIG, loads)
    monkeypatch.setattr(bot.app, "load_live_generator", fake_load)
    settings = load_settings(home=tmp_path / "home", retrain={"poll_seconds": 0.05})
    paths = GeneratorPaths.under(settings.home)
    registry = ModelRegistry.open(paths)
    app = create_app(settings, retriever=FakeRetriever())
    try:
        async with started(app):
            # Nothing trained yet: copy mode.
            assert not app[ENGINE].generating  # type: ignore[attr-defined]
            base = registry.register_base(tmp_path / "b", source="pretrained", model_ref="b")
            first = registry.register_adapter(tmp_path / "v0001", base_id=base.id)
            second = registry.register_adapter(
                tmp_path / "v0002", base_id=base.id, parent_id=first.id
            )

            async def serving(version: str) -> None:
                for _ in range(200):
                    if app[SWAPPABLE].version == version:
                        return
                    await asyncio.sleep(0.02)
                raise AssertionError(f"still serving {app[SWAPPABLE].version}, not {version}")

            registry.promote(first.id)
            await serving("v0001")
            assert app[ENGINE].generating  # type: ignore[attr-defined]
            registry.promote(second.id)
            await serving("v0002")
            rollback(paths)
            await serving("v0001")
            reply = [p async for p in app[SWAPPABLE].stream(_request())]
            assert isinstance("".join(reply), str)
    finally:
        registry.close()
    assert loads == ["v0001", "v0002", "v0001"]


def _request() -> Any:
    from bot.core.types import GenerationRequest

    return GenerationRequest("where is my order", max_new_tokens=4)


def test_rollback_command(paths: GeneratorPaths) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    runner = CliRunner()
    home = str(paths.database.parent)
    result = runner.invoke(app, ["--home", home, "rollback"])
    assert result.exit_code == 2 and "has no parent" in result.output
    _cycle(
        paths,
        feedback=[],
        evaluate=_scripted({"held_out_rouge_l": 0.1}, {"held_out_rouge_l": 0.9}),
    )
    result = runner.invoke(app, ["--home", home, "rollback"])
    assert result.exit_code == 0, result.output
    assert "rolled back from v0002 to v0001" in result.output
    assert _live(paths).folder.name == "v0001"  # type: ignore[union-attr]


async def test_dashboard_lists_cycles_with_data_figures_and_decision(ops: Any) -> None:
    from tests.support.dashboard import logged_in, page, registry_paths

    await logged_in(ops)
    registry = ModelRegistry.open(registry_paths(ops.database))
    cycles = CycleLog.open(registry_paths(ops.database))
    try:
        base = registry.register_base(Path("/m/base"), source="pretrained", model_ref="/m/base")
        first = registry.register_adapter(Path("/m/adapters/v0001"), base_id=base.id)
        second = registry.register_adapter(
            Path("/m/adapters/v0002"), base_id=base.id, parent_id=first.id
        )
        registry.promote(first.id)
        cycle = cycles.start(
            owner="pid 1 on host",
            live_adapter_id=first.id,
            data={
                "training_conversations": 42,
                "approved": 3,
                "corrected": 2,
                "rejected": 1,
                "abandoned_adapters_removed": 1,
            },
        )
        cycles.set_candidate(cycle, second.id)
        cycles.finish(
            cycle,
            status="kept",
            reason="worse than live by more than 0.02: held_out_rouge_l -0.100",
            figures={
                "candidate": {
                    "held_out_rouge_l": 0.3125,
                    "held_out_facts": 0.25,
                    "corrections_grounded": 0.5,
                    "corrections_facts": 0.75,
                },
                "live": {
                    "held_out_rouge_l": 0.4125,
                    "held_out_facts": 0.125,
                    "corrections_grounded": 0.0,
                    "corrections_facts": 0.0,
                },
                "embedder": {
                    "status": "kept",
                    "reason": "worse than the live pair by more than 0.02: top1 worse by 0.100",
                    "live_index_version": 3,
                    "candidate_index_version": 4,
                    "data": {
                        "abandoned_folders_removed": 2,
                        "messages": 120,
                        "answers": 17,
                        "corrections_trained": 2,
                        "validation": 11,
                        "corrections_probed": 2,
                        "abandoned_candidates_removed": 1,
                    },
                    "candidate": {"top1": 0.5, "recall_at_5": 0.875, "corrections_top1": 1.0},
                    "live": {"top1": 0.6, "recall_at_5": 0.8125, "corrections_top1": 0.5},
                    "tuning_seconds": 42.0,
                },
            },
        )
    finally:
        cycles.close()
        registry.close()
    text = await page(ops, "/ops/metrics")
    assert "Retraining cycles" in text
    assert "42 conversations · 3 approved · 2 corrected · 1 rejected" in text
    assert "v0002 vs v0001" in text and "0.312 vs 0.412" in text
    # The gate's newer figures, candidate vs live.
    assert "facts stated 0.250 vs 0.125" in text
    assert "corrections grounded 0.500 vs 0.000" in text
    assert "corrections facts stated 0.750 vs 0.000" in text
    assert "kept" in text and "worse than live by more than 0.02" in text
    # The embedder step: its data, its figures against the live pair, its decision.
    assert "index v4 vs v3" in text
    assert "top-1 0.500 vs 0.600" in text and "recall@5 0.875 vs 0.812" in text
    assert "corrections retrieved 1.000 vs 0.500" in text
    assert "120 messages · 17 answers · 2 corrections trained · 11 validating" in text
    assert "1 abandoned candidates removed · 2 unrecorded folders removed" in text
    assert "tuned 42 s" in text and "1 unrecorded adapters removed" in text
    assert "top1 worse by 0.100" in text
    # A figure a cycle did not measure is left out, not shown as zero.
    assert "hand-off recall" not in text and "wrong answers" not in text


# -- the gate within its share of the budget -----------------------------------------------

HALF_HELD_OUT = CONFIG.model_copy(update={"eval_percent": 50.0})  # a gate set of 3 log turns


def _writer(cut_after: int | None, asked: dict[str, list[int]]) -> Any:
    """Adapters that answer with the top evidence; the candidate (not v0001) stops after
    ``cut_after`` replies as a deadline would stop it, the rest of its batch cut."""

    def write_with(adapter: AdapterRecord) -> Any:
        name = adapter.folder.name

        def write(requests: list[PromptRequest], deadline: float | None) -> list[str | None]:
            asked.setdefault(name, []).append(len(requests))
            replies: list[str | None] = [
                r.evidence[0].agent_reply if r.evidence else "" for r in requests
            ]
            if name != "v0001" and cut_after is not None:
                done = sum(asked[name]) - len(requests)
                keep = max(cut_after - done, 0)
                replies[keep:] = [None] * (len(replies) - keep)
            return replies

        return write

    return write_with


@pytest.mark.parametrize("cut_after", [None, 1], ids=["whole gate", "cut after one reply"])
def test_a_gate_the_budget_cut_to_too_few_replies_keeps_the_live_adapter_and_says_so(
    paths: GeneratorPaths, cut_after: int | None
) -> None:
    from finetune.serving_policy import serving_verdict

    asked: dict[str, list[int]] = {}
    report = _cycle(paths, config=HALF_HELD_OUT, write=_writer(cut_after, asked))
    record = report.record
    evaluation = record.figures["evaluation"]
    assert evaluation["held_out"] == 3 and evaluation["corrections"] == 1
    gate = {"candidate": record.figures["candidate"], "copy": record.figures["copy"]}
    if cut_after is None:
        # Both wrote the same replies to every case: within the tolerance, promoted.
        assert evaluation["scored"] == 3 and evaluation["corrections_scored"] == 1
        assert record.status == "promoted", record.reason
        assert asked["v0001"] == [4]  # the live adapter answered the whole gate set
        verdict = serving_verdict({"gate": gate}, 0.05)
        assert verdict is not None and verdict.serve
        return
    # The candidate finished one reply; the live adapter was asked only that case, and
    # the figures of both (and copying's) are on it alone: too few to decide anything.
    assert asked["v0001"] == [1]
    assert evaluation["scored"] == 1 and evaluation["cut"] == 2
    assert record.figures["candidate"]["held_out_examples"] == 1
    assert record.figures["live"]["held_out_examples"] == 1
    assert record.status == "kept" and _live(paths).folder.name == "v0001"  # type: ignore[union-attr]
    assert "the budget cut the gate: compared on 1 of 3 held-out replies" in record.reason
    table = report.format_table()
    assert "compared on 1 of 3 held-out replies and 0 of 1 corrections (2 cut short" in table
    # The server would not send the candidate's replies either, were it made live.
    verdict = serving_verdict({"gate": gate}, 0.05)
    assert verdict is not None and not verdict.serve
    assert "evaluated on 1 held-out replies" in verdict.reason


def test_a_gate_whose_share_training_spent_loads_no_adapter_and_promotes_nothing(
    paths: GeneratorPaths,
) -> None:
    asked: dict[str, list[int]] = {}
    loaded: list[str] = []

    def write_with(adapter: AdapterRecord) -> Any:
        loaded.append(adapter.folder.name)
        return _writer(None, asked)(adapter)

    # A budget of 0.06 s, and each training step made to take 0.1 s: training ends past the
    # gate's deadline. (Without the pause a warm tiny model trained within the 0.06 s on a
    # quiet machine, and the gate had time to load both adapters.)
    policy = dataclasses.replace(POLICY, budget_minutes=0.001)
    report = _cycle(
        paths,
        config=HALF_HELD_OUT,
        policy=policy,
        write=write_with,
        on_step=lambda step, loss: time.sleep(0.1),
    )
    assert loaded == []
    record = report.record
    assert record.status == "kept" and _live(paths).folder.name == "v0001"  # type: ignore[union-attr]
    assert "compared on 0 of 3 held-out replies" in record.reason
    assert record.figures["evaluation"]["scored"] == 0
    # The record says where the budget went, step by step, against each step's share
    # (benchmarks/retrain_budget.py reads it): here training ran past all of it.
    budget = record.figures["budget"]
    steps = dict(budget["steps_s"])
    assert list(steps) == [
        "train candidate",
        "build examples",
        "load base",
        "LoRA",
        "gate",
    ]
    assert budget["shares_s"] == {
        "train candidate": round(0.06 * 0.7, 1),
        "build examples": round(0.06 * 0.7 * 0.1, 1),
        "gate": round(0.06 * 0.3, 1),
    }
    assert steps["train candidate"] > budget["shares_s"]["train candidate"]
    assert "time:        train candidate " in report.format_table()
