"""The pacing every bounded step of train and retrain shares (retrieval/pacing.py)."""

from __future__ import annotations

from retrieval.pacing import Pace, while_time_allows


class Ticking:
    """A clock that each round of work moves by its cost."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_round_starts_only_while_the_slowest_so_far_still_fits() -> None:
    clock = Ticking()
    done = []
    for n in while_time_allows(10, 25.0, clock):
        clock.now += 10.0  # two rounds end by 20 s; a third would end at 30 s
        done.append(n)
    assert done == [0, 1] and clock.now == 20.0


def test_past_its_deadline_only_a_first_round_that_must_run_runs() -> None:
    clock = Ticking()
    clock.now = 100.0
    assert list(while_time_allows(3, 50.0, clock)) == []
    assert list(while_time_allows(3, 50.0, clock, first_always=True)) == [0]
    assert list(while_time_allows(3, None, clock)) == [0, 1, 2]


def test_an_estimate_stands_for_the_first_round_and_the_slowest_is_kept() -> None:
    clock = Ticking()
    pace = Pace(15.0, clock, slowest=20.0)
    assert list(pace.rounds(3)) == []  # 20 s expected, 15 s left
    pace = Pace(100.0, clock, slowest=1.0)
    for n in pace.rounds(3):
        clock.now += 5.0 * (n + 1)
    assert pace.slowest == 15.0 and clock.now == 30.0
