"""Replay: schedules reproduce executions bit for bit and fail loudly when they cannot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from synthetic import build

from ffasim.check.explore import explore, replay
from ffasim.check.schedule import Decision, ReplayDivergence, Schedule, ScheduleError
from ffasim.check.scheduler import Execution
from ffasim.check.strategies import DFSStrategy, RandomStrategy, ReplayStrategy
from ffasim.machine import ASSERT, Atomic, Machine, Thread, spin_lock, spin_unlock


def racy(m: Machine) -> Any:
    """Two threads increment a counter under a lock, one also without it; an allocation may
    fail (a fault site); the finish step checks the count."""
    x = Atomic(m, "x")
    lock = m.spinlock("L")

    def locked() -> None:
        spin_lock(lock)
        v = x.read()
        x.set(v + 1)
        spin_unlock(lock)

    def unlocked() -> None:
        if m.heap.alloc_page("xen", site="scratch") is None:
            return
        v = x.read()
        x.set(v + 1)

    def finish() -> list[str]:
        return [] if x.value == 2 else [f"x is {x.value}"]

    return [Thread("t0", locked), Thread("t1", unlocked)], finish


def _first_failure(seed: int = 0) -> Any:
    report = explore(
        racy,
        RandomStrategy(seed=seed, executions=500),
        monitors_factory=list,
        faults=lambda site: (1,),
    )
    assert report.findings
    return report.findings[0]


def test_replay_reproduces_the_trace_bit_for_bit() -> None:
    _, result = _first_failure()
    again = replay(racy, result.decisions, faults=lambda site: (1,))
    assert again.trace == result.trace
    assert again.findings == result.findings
    assert again.decisions == result.decisions


def test_every_random_execution_replays_identically() -> None:
    strategy = RandomStrategy(seed=5, executions=30)
    while strategy.new_execution():
        first = Execution(racy, strategy, faults=lambda site: (1,)).run()
        again = replay(racy, first.decisions, faults=lambda site: (1,))
        assert again.trace == first.trace


def test_schedule_file_round_trip_replays(tmp_path: Path) -> None:
    finding, result = _first_failure()
    schedule = Schedule(
        decisions=result.decisions,
        scenario="racy",
        variant="reference",
        strategy="random",
        seed=0,
        faults=["alloc"],
        finding=finding.summary(),
    )
    path = schedule.save(tmp_path / "racy.json")
    loaded = Schedule.load(path)
    assert loaded == schedule
    raw = json.loads(path.read_text())
    assert raw["format"] == 1 and raw["scenario"] == "racy" and raw["finding"] == finding.summary()
    again = replay(racy, loaded.decisions, faults=lambda site: (1,))
    assert again.trace == result.trace


def test_schedule_save_never_overwrites(tmp_path: Path) -> None:
    s = Schedule(decisions=[])
    s.save(tmp_path / "a.json")
    with pytest.raises(FileExistsError):
        s.save(tmp_path / "a.json")
    assert s.save_new(tmp_path, "a").name == "a-2.json"
    assert s.save_new(tmp_path, "a").name == "a-3.json"


def test_replay_divergence_names_step_expected_and_possible() -> None:
    decisions = [Decision("thread", "t1", ("t0", "t1"), "", "t0")]
    other = build([[("w", "x")], [("w", "x")], [("w", "x")]])
    with pytest.raises(ReplayDivergence) as info:
        replay(other, decisions)
    e = info.value
    assert (e.step, e.index) == (0, 0)
    assert e.expected == "preempt t1 (of t0, t1)"
    assert e.possible == "a choice of t0, t1, t2"
    assert str(e) == (
        "replay diverged at step 0 (decision 0): schedule expects preempt t1 (of t0, t1), "
        "execution offers a choice of t0, t1, t2"
    )


def test_replay_divergence_when_the_schedule_runs_out() -> None:
    program = build([[("w", "x"), ("w", "x")], [("w", "x")]])
    with pytest.raises(
        ReplayDivergence,
        match=r"expects the end of the schedule, execution offers a choice of t0, t1$",
    ):
        replay(program, [])


def test_replay_divergence_when_decisions_are_left_over() -> None:
    program = build([[("w", "x")]])
    extra = [Decision("fault", 1, (0, 1), "alloc:x", "t0")]
    with pytest.raises(
        ReplayDivergence,
        match=r"expects fault alloc:x: inject 1, execution offers the end of the execution$",
    ):
        replay(program, extra)


def test_replay_divergence_on_a_different_fault_site() -> None:
    decisions = [Decision("fault", 1, (0, 1), "alloc:other", "t0")]
    with pytest.raises(
        ReplayDivergence, match=r"execution offers fault at alloc:scratch with 2 options$"
    ):
        replay(racy, decisions, faults=lambda site: (1,))


def test_lenient_replay_defaults_to_no_preemption_and_no_fault() -> None:
    r = replay(racy, [], faults=lambda site: (1,), strict=False)
    assert r.preemptions == 0 and r.faults == [] and not r.findings


def test_replay_strategy_runs_one_execution() -> None:
    s = ReplayStrategy([])
    assert s.new_execution() is True
    assert s.new_execution() is False


def test_dfs_replays_its_own_prefixes_consistently() -> None:
    # Exhaustive search re-executes prefixes; any drift would raise NondeterminismError.
    report = explore(
        racy, DFSStrategy(), monitors_factory=list, stop_on_first=False, faults=lambda site: (1,)
    )
    assert report.exhausted
    assert {f.message for f, _ in report.findings} == {"x is 1"}


def test_schedule_load_rejects_what_is_not_a_schedule(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(ScheduleError, match=r"^.*bad\.json: not JSON: .* at line 1, column 2$"):
        Schedule.load(p)
    p.write_text('{"format": 1,\n "decisions": "unterminated')
    with pytest.raises(
        ScheduleError,
        match=r"^.*bad\.json: not JSON: Unterminated string starting at line 2, column 15$",
    ):
        Schedule.load(p)
    p.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(
        ScheduleError, match=r"^.*bad\.json: not a schedule file \(byte 0 is not UTF-8 text\)$"
    ):
        Schedule.load(p)
    p.write_text(json.dumps({"format": 1, "decisions": [["thread", "t9", ["t0"], "", ""]]}))
    with pytest.raises(
        ScheduleError, match=r"^bad decision .*: 't9' is not one of the alternatives$"
    ):
        Schedule.load(p)
    p.write_text(json.dumps({"format": 7, "decisions": []}))
    with pytest.raises(ScheduleError, match=r"^unsupported schedule format 7 \(expected 1\)$"):
        Schedule.load(p)
    with pytest.raises(ScheduleError, match=r"^cannot read .*missing\.json: "):
        Schedule.load(tmp_path / "missing.json")


def test_replayed_assertion_points_at_the_same_trace_step() -> None:
    def program(m: Machine) -> Any:
        x = Atomic(m, "x")

        def a() -> None:
            x.set(1)
            ASSERT(x.read() == 1, "x == 1")

        return [Thread("a", a), Thread("b", lambda: x.set(2))], None

    report = explore(program, DFSStrategy(), monitors_factory=list)
    finding, result = report.findings[0]
    again = replay(program, result.decisions)
    assert again.findings[0].step == finding.step
    assert again.trace[finding.step].kind == "finding"
