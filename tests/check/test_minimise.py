"""Minimisation: fewer preemptions, then fewer faults and steps, same finding kind."""

from __future__ import annotations

from typing import Any

from synthetic import build

from ffasim.check.explore import explore, minimise, replay
from ffasim.check.strategies import RandomStrategy
from ffasim.machine import Atomic, Machine, Thread

NOISE = 8


def lost_update(m: Machine) -> Any:
    """Each thread does private work around a read-modify-write of ``x``; the update is lost
    only if the other thread runs between the read and the write (one preemption). An
    allocation that may fail is irrelevant to the bug."""
    x = Atomic(m, "x")
    noise = [Atomic(m, f"n{i}") for i in range(2)]

    def body(i: int) -> Any:
        def run() -> None:
            m.heap.alloc_page("xen", site=f"buf{i}")
            for _ in range(NOISE):
                noise[i].inc()
            v = x.read()
            for _ in range(NOISE):
                noise[i].inc()
            x.set(v + 1)
            for _ in range(NOISE):
                noise[i].inc()

        return run

    def finish() -> list[str]:
        return [] if x.value == 2 else ["lost update"]

    return [Thread("t0", body(0)), Thread("t1", body(1))], finish


def _found_by_random() -> Any:
    for seed in range(50):
        report = explore(
            lost_update,
            RandomStrategy(seed=seed, executions=200),
            monitors_factory=list,
            faults=lambda site: (1,),
        )
        _, result = report.findings[0]
        if result.preemptions >= 4 and result.faults:
            return result
    raise AssertionError("no noisy failing schedule found")


def test_minimise_reduces_preemptions_to_the_one_the_bug_needs() -> None:
    noisy = _found_by_random()
    small = minimise(lost_update, noisy, list, faults=lambda site: (1,))
    assert [f.kind for f in small.findings] == ["spec"]
    assert small.preemptions == 1
    assert noisy.preemptions >= 4


def test_minimise_drops_faults_the_bug_does_not_need() -> None:
    noisy = _found_by_random()
    small = minimise(lost_update, noisy, list, faults=lambda site: (1,))
    assert small.faults == []
    # The allocation the dropped fault used to skip runs now: one step of its own (the heap).
    assert small.steps <= noisy.steps + 1


def test_minimised_schedule_replays_strictly_with_its_trace() -> None:
    noisy = _found_by_random()
    small = minimise(lost_update, noisy, list, faults=lambda site: (1,))
    assert small.trace  # re-run with the trace on
    again = replay(lost_update, small.decisions, faults=lambda site: (1,))
    assert again.trace == small.trace


def test_minimise_keeps_a_result_without_findings() -> None:
    program = build([[("w", "x")], [("w", "x")]])
    report = explore(program, RandomStrategy(seed=0, executions=1), monitors_factory=list)
    assert not report.findings
    result = replay(program, [], strict=False)
    assert minimise(program, result, list) is result


def test_minimise_is_deterministic() -> None:
    noisy = _found_by_random()
    a = minimise(lost_update, noisy, list, faults=lambda site: (1,))
    b = minimise(lost_update, noisy, list, faults=lambda site: (1,))
    assert a.decisions == b.decisions and a.trace == b.trace
