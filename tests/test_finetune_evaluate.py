"""Evaluation within a budget: the adapter answers held-out cases a batch at a time until
the next batch would overrun the deadline; copying is scored on the same cases."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import pytest

import finetune.evaluate as evaluate
from finetune.evaluate import EvalCase, SystemScores, evaluate_systems
from finetune.prompting import PromptRequest
from retrieval.records import RetrievedExchange

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
    """Stands in for ``time`` in finetune.evaluate: each batch written costs 10 s."""

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
    def generate(requests: Sequence[PromptRequest]) -> list[str]:
        calls.append((state["who"], len(requests)))
        clock.now += 10.0
        return (
            ["I don't know."] * len(requests) if state["who"] == "base" else [REPLY] * len(requests)
        )

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


def _evaluate(clock: Clock, **options: Any) -> tuple[list[tuple[str, int]], list[SystemScores]]:
    """``evaluate_systems`` over the ten cases in batches of 4, with a writer that takes
    10 s of ``clock`` a batch; which system wrote each batch (and its size), and the scores."""
    calls: list[tuple[str, int]] = []
    state = {"who": "adapter"}
    scores = evaluate_systems(
        CASES,
        _writer(clock, calls, state),
        adapter_off=_adapter_off(state),
        handoff_reply="",
        batch_size=4,
        **options,
    )
    return calls, scores


def test_without_a_deadline_every_case_is_answered_by_every_system(clock: Clock) -> None:
    calls, scores = _evaluate(clock, base_model_cases=4)
    assert calls == [("adapter", 4), ("adapter", 4), ("adapter", 2), ("base", 4)]
    by_name = {s.name: s for s in scores}
    assert by_name["adapter"].examples == by_name["copy top retrieved"].examples == 10
    assert by_name["base model"].examples == 4
    assert by_name["adapter"].rouge_l == pytest.approx(1.0)
    assert by_name["base model"].facts_share == 0.0


def test_a_deadline_stops_before_the_batch_that_would_overrun_it(clock: Clock) -> None:
    # Two batches of 10 s fit before 25 s; a third would end at 30 s.
    calls, scores = _evaluate(clock, base_model_cases=4, deadline=25.0)
    assert calls == [("adapter", 4), ("adapter", 4)]  # no time left for the base model
    by_name = {s.name: s for s in scores}
    assert set(by_name) == {"adapter", "copy top retrieved"}
    # Copying is scored on the cases the adapter answered, not on all ten.
    assert by_name["adapter"].examples == by_name["copy top retrieved"].examples == 8


def test_a_deadline_already_passed_still_gets_one_batch(clock: Clock) -> None:
    clock.now = 100.0
    calls, scores = _evaluate(clock, deadline=50.0)
    assert calls == [("adapter", 4)]
    assert [s.examples for s in scores] == [4, 4]
