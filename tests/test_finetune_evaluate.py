"""Evaluation within a budget: the adapter answers held-out cases a batch at a time until
the next batch would overrun the deadline, and a batch the deadline reaches (the first one
too) stops there; only replies written to the end are scored, and copying is scored on the
same cases."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import pytest

import finetune.evaluate as evaluate
from finetune.config import GeneratorConfig
from finetune.evaluate import EvalCase, Evaluation, evaluate_systems
from finetune.examples import iter_turns
from finetune.generation import ReplyGenerator
from finetune.pipeline import eval_cases_for
from finetune.prompting import PromptFormat, PromptRequest
from retrieval.records import Conversation, LogMessage, RetrievedExchange
from tests.support.finetune_fakes import (
    InMemoryRetriever,
    tiny_model,
    tiny_tokenizer,
    toy_conversations,
)

REPLY = "Track it at shop.com/track. Article KB-SHP-02."
CASES = [
    EvalCase(
        PromptRequest(
            f"where is order {i}",
            evidence=(
                RetrievedExchange(0.9, f"log:{i}", "where is my order", REPLY, "log", f"c{i}"),
            ),
        ),
        REPLY,
        f"held-{i}",
    )
    for i in range(10)
]


class Clock:
    """Stands in for ``time`` in finetune.evaluate; only the writers move it."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(evaluate, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


def _writer(clock: Clock, calls: list[tuple[str, int]], state: dict[str, str]):
    """Writes a reply in 2.5 s of ``clock`` (10 s a batch of 4) and stops at the deadline."""

    def generate(requests: Sequence[PromptRequest], deadline: float | None) -> list[str | None]:
        calls.append((state["who"], len(requests)))
        replies: list[str | None] = []
        for _ in requests:
            if deadline is not None and clock.now >= deadline:
                replies.append(None)
                continue
            clock.now += 2.5
            replies.append("I don't know." if state["who"] == "base" else REPLY)
        return replies

    return generate


def _adapter_off(state: dict[str, str]):
    @contextlib.contextmanager
    def off() -> Iterator[None]:
        state["who"] = "base"
        try:
            yield
        finally:
            state["who"] = "adapter"

    return off


def _evaluate(clock: Clock, **options: Any) -> tuple[list[tuple[str, int]], Evaluation]:
    """``evaluate_systems`` over the ten cases in batches of 4, with a writer that takes
    10 s of ``clock`` a batch; which system wrote each batch (and its size), and the result."""
    calls: list[tuple[str, int]] = []
    state = {"who": "adapter"}
    evaluation = evaluate_systems(
        CASES,
        _writer(clock, calls, state),
        adapter_off=_adapter_off(state),
        handoff_reply="",
        batch_size=4,
        **options,
    )
    return calls, evaluation


def test_without_a_deadline_every_case_is_answered_by_every_system(clock: Clock) -> None:
    calls, evaluation = _evaluate(clock, base_model_cases=4)
    assert calls == [("adapter", 4), ("adapter", 4), ("adapter", 2), ("base", 4)]
    assert evaluation.as_dict() == {"held_out": 10, "scored": 10, "cut": 0}
    assert evaluation.sentence() == "10 of 10 held-out replies evaluated"
    by_name = {s.name: s for s in evaluation.scores}
    assert by_name["adapter"].examples == by_name["copy top retrieved"].examples == 10
    assert by_name["base model"].examples == 4
    assert by_name["adapter"].rouge_l == pytest.approx(1.0)
    assert by_name["base model"].facts_share == 0.0


def test_a_deadline_stops_before_the_batch_that_would_overrun_it(clock: Clock) -> None:
    # Two batches of 10 s fit before 25 s; a third would end at 30 s.
    calls, evaluation = _evaluate(clock, base_model_cases=4, deadline=25.0)
    assert calls == [("adapter", 4), ("adapter", 4)]  # no time left for the base model
    assert clock.now == 20.0
    by_name = {s.name: s for s in evaluation.scores}
    assert set(by_name) == {"adapter", "copy top retrieved"}
    # Copying is scored on the cases the adapter answered, not on all ten.
    assert by_name["adapter"].examples == by_name["copy top retrieved"].examples == 8
    assert evaluation.sentence() == "8 of 10 held-out replies evaluated (2 not reached)"


def test_the_deadline_stops_the_first_batch_and_only_finished_replies_count(
    clock: Clock,
) -> None:
    # The first batch would end at 10 s; the deadline comes after two of its replies.
    calls, evaluation = _evaluate(clock, base_model_cases=4, deadline=5.0)
    assert calls == [("adapter", 4)] and clock.now == 5.0
    assert [(s.name, s.examples) for s in evaluation.scores] == [
        ("adapter", 2),
        ("copy top retrieved", 2),
    ]
    assert evaluation.as_dict() == {"held_out": 10, "scored": 2, "cut": 2}
    assert evaluation.sentence() == (
        "2 of 10 held-out replies evaluated (2 cut short by the budget, not scored; 6 not reached)"
    )


def test_a_deadline_already_passed_writes_nothing_and_says_so(clock: Clock) -> None:
    clock.now = 100.0
    calls, evaluation = _evaluate(clock, deadline=50.0)
    assert calls == [] and clock.now == 100.0
    assert [s.examples for s in evaluation.scores] == [0, 0]
    assert evaluation.sentence() == "0 of 10 held-out replies evaluated (10 not reached)"
    # `supportbot train` printed "adapter 0 0.000 0.0% — 0.0%": scores of nothing as zeros.
    rows = evaluate.format_scores(evaluation.scores).splitlines()[1:]
    assert [row.split() for row in rows] == [
        ["adapter", "0", "—", "—", "—", "—"],
        ["copy", "top", "retrieved", "0", "—", "—", "—", "—"],
    ]


def _tiny_llama(clock: Clock) -> tuple[ReplyGenerator, list[EvalCase]]:
    """A tiny random Llama whose every pass (a prompt's prefill, a decoding step) costs
    1 s of ``clock``, and five held-out cases; the longest prompt fills the model's 128
    positions after a few tokens, so its reply ends early."""
    conversations = toy_conversations(repeats=2)
    retriever = InMemoryRetriever(conversations)
    tokenizer = tiny_tokenizer([m.text for c in conversations for m in c.messages])
    model = tiny_model("llama", len(tokenizer), seed=0, context=128)
    model.register_forward_hook(lambda *_: setattr(clock, "now", clock.now + 1.0))
    fmt = PromptFormat(
        tokenizer, instructions="Answer.", max_prompt_tokens=120, max_target_tokens=40
    )
    generator = ReplyGenerator(model, tokenizer, fmt, max_new_tokens=40, no_repeat_ngram_size=0)
    questions = ["where is my order", "my stove is broken", "do you price match", "thanks"]
    cases = [
        EvalCase(PromptRequest(q, (), tuple(retriever.search((), q, 1))), REPLY, f"held-{i}")
        for i, q in enumerate(questions)
    ]
    long = PromptRequest("my stove is broken " * 10, (), tuple(retriever.search((), "stove", 3)))
    return generator, [*cases, EvalCase(long, REPLY, "held-long")]


def _within(generator: ReplyGenerator, clock: Clock) -> evaluate.ReplyWriter:
    def write(requests: Sequence[PromptRequest], deadline: float | None) -> list[str | None]:
        return generator.generate_within(requests, deadline, batch_size=8, clock=clock.monotonic)

    return write


def test_a_tiny_model_stops_at_the_deadline_in_its_first_batch(clock: Clock) -> None:
    """The deadline passes while the tiny model's one batch decodes: the evaluation
    returns within one pass of it and scores only the replies that had ended by then, each
    exactly as it is written without a deadline; copying is scored on those cases alone."""
    generator, cases = _tiny_llama(clock)
    fmt = generator.prompt_format
    requests = [c.request for c in cases]
    unbounded = generator.generate_batch(requests)
    # When each reply ends, in passes: one prefills each prompt, then one a step after the
    # first; decoding in generate_within's order (shortest prompt first).
    prompts = [fmt.encode(r).input_ids for r in requests]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    ends: dict[int, int] = {}
    steps = generator.decode_batch([prompts[i] for i in order], [generator.settings()] * 5)
    for step, events in enumerate(steps, 1):
        ends.update((order[e.row], len(prompts) + step - 1) for e in events if e.finished)
    deadline = 20.0
    in_time = {row for row, end in ends.items() if end <= deadline}
    assert 4 in in_time and len(in_time) < len(cases) and max(ends.values()) > deadline + 10

    write = _within(generator, clock)
    clock.now = 0.0
    evaluation = evaluate_systems(
        cases, write, adapter_off=None, handoff_reply="", batch_size=8, deadline=deadline
    )
    assert deadline <= clock.now <= deadline + 1.0
    assert evaluation.as_dict() == {
        "held_out": 5,
        "scored": len(in_time),
        "cut": 5 - len(in_time),
    }
    assert [(s.name, s.examples) for s in evaluation.scores] == [
        ("adapter", len(in_time)),
        ("copy top retrieved", len(in_time)),
    ]
    clock.now = 0.0
    assert write(requests, deadline) == [unbounded[i] if i in in_time else None for i in range(5)]


def test_a_tiny_model_stops_prefilling_its_first_batch_at_the_deadline(clock: Clock) -> None:
    """On a CPU each prompt of a batch is prefilled alone, each running its whole prompt
    through the model: the deadline passing after the second of five stops the batch
    there, with no reply to score."""
    generator, cases = _tiny_llama(clock)
    evaluation = evaluate_systems(
        cases,
        _within(generator, clock),
        adapter_off=None,
        handoff_reply="",
        batch_size=8,
        deadline=2.0,
    )
    assert clock.now == 2.0  # two prompts prefilled; no third, and no decoding step
    assert evaluation.as_dict() == {"held_out": 5, "scored": 0, "cut": 5}


def _asked(cid: str, reply: str, earlier: tuple[LogMessage, ...] = ()) -> Conversation:
    question = LogMessage("customer", "where is my order?")
    return Conversation(cid, (*earlier, question, LogMessage("agent", reply)))


def test_copying_and_the_reference_are_scored_as_the_bot_sends_them() -> None:
    # A held-out e-mail reply, and its twin from another conversation as the top evidence.
    # Scored as logged, copying matched the reference's sign-off and e-mail lines, which a
    # generator is taught to leave out (finetune.examples.reply_target).
    email = (
        "Hi,\n\nTrack it at shop.com/track (KB-SHP-02).\n\n"
        "If you have any other questions, just reply to this email.\n\nAll the best,\n[NAME]"
    )
    greeted = (LogMessage("customer", "hi"), LogMessage("agent", "Hi! How can I help?"))
    held_out = [_asked("c-first", email), _asked("c-later", email, greeted)]
    turns = [t for c in held_out for t in iter_turns(c) if t.reply == email]
    retriever = InMemoryRetriever([_asked("c-logged", email)])
    first, later = eval_cases_for(turns, retriever, GeneratorConfig(retrieved_k=1))
    sent_first = "Hi,\n\nTrack it at shop.com/track (KB-SHP-02)."
    sent_later = "Track it at shop.com/track (KB-SHP-02)."  # no fresh "Hi," mid-conversation
    assert (first.reference, later.reference) == (sent_first, sent_later)
    assert evaluate.copy_top_retrieved([first, later]) == [sent_first, sent_later]


def test_copying_is_scored_without_what_its_agent_promised_to_send() -> None:
    # The engine sends "See KB-RET-01." in place of a promise to e-mail the guide, and
    # drops "I've looked into it.": the copy baseline is what a customer reads.
    promised = (
        "Returns are free within 30 days. I'll send you the returns guide (KB-RET-01) by email."
    )
    looked_up = "I've looked into it. Returns are free within 30 days (KB-RET-01)."
    cases = []
    for cid, reply in (("c-promised", promised), ("c-looked", looked_up)):
        retriever = InMemoryRetriever([_asked(f"{cid}-logged", reply)])
        asked = [t for t in iter_turns(_asked(cid, reply)) if t.reply == reply]
        cases += eval_cases_for(asked, retriever, GeneratorConfig(retrieved_k=1))
    assert evaluate.copy_top_retrieved(cases) == [
        "Returns are free within 30 days. See KB-RET-01.",
        "Returns are free within 30 days (KB-RET-01).",
    ]
