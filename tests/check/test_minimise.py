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


def test_anchored_switches_bring_a_random_schedule_of_the_default_scenario_to_one() -> None:
    # The default scenario's random schedules have many preemptions; dropping one by position
    # shifts the others, so positional delta debugging stalls (it stopped at 11). Anchored to
    # "thread T's n-th step", the seed's ASSERT comes down to the one preemption it needs.
    from ffasim.check.monitors import default_monitors
    from ffasim.scenario import load
    from ffasim.scenario._check import scenario_program

    program = scenario_program(load("default"), "seed-v1")
    found = explore(program, RandomStrategy(seed=0), monitors_factory=default_monitors, budget=50)
    (finding, result), *_ = found.findings
    assert finding.kind == "assertion" and result.preemptions > 5
    small = minimise(program, result, default_monitors)
    assert small.preemptions == 1
    assert small.findings[0].message.startswith("HypervisorPanic: Assertion '!spin_is_locked")
    assert [
        f.summary()
        for f in replay(program, small.decisions, monitors_factory=default_monitors).findings
    ] == [f.summary() for f in small.findings]


def test_anchored_replay_switches_at_a_threads_own_step_count() -> None:
    from ffasim.check.explore import run_execution
    from ffasim.check.strategies.anchored import AnchoredReplay, Switch, SwitchRecorder

    switches = [Switch("t0", 3, "t1", True), Switch("t1", 5, "t0", True)]
    anchored = AnchoredReplay(switches, {}, first="t0")
    anchored.new_execution()
    r = run_execution(lost_update, anchored)
    order = [e[0] for e in r.events]
    n = len(order) // 2
    assert order == ["t0"] * 3 + ["t1"] * 5 + ["t0"] * (n - 3) + ["t1"] * (n - 5)
    assert r.preemptions == 2
    # Recording that execution's decisions gives the same switches back, and the start.
    rec = SwitchRecorder(r.decisions)
    rec.new_execution()
    run_execution(lost_update, rec)
    assert rec.switches == [Switch("", 0, "t0", False), *switches]
    # Dropping the first switch leaves the second where it was: t1 never got to its 5th step
    # before t0 finished, so it runs to the end.
    alone = AnchoredReplay(switches[1:], {}, first="t0")
    alone.new_execution()
    assert [e[0] for e in run_execution(lost_update, alone).events] == ["t0"] * n + ["t1"] * n
