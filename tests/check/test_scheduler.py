"""The scheduler: greenlet threads, disabled waiters, findings from exceptions, fault points."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import greenlet
import pytest
from synthetic import Odometer, build, key_name, run_all

from ffasim import abi
from ffasim.check.explore import explore, finding_key
from ffasim.check.monitor import Finding, Monitor
from ffasim.check.scheduler import Execution, ExecutionResult
from ffasim.check.strategies import DFSStrategy, RandomStrategy
from ffasim.check.strategies.base import BaseStrategy
from ffasim.machine import (
    ASSERT,
    Atomic,
    Machine,
    Thread,
    read_lock,
    read_unlock,
    spin_lock,
    spin_unlock,
    write_lock,
    write_unlock,
)

explore_module = importlib.import_module("ffasim.check.explore")  # the package re-exports explore()

Body = Callable[[Machine], Sequence[tuple[str, Callable[[], None]]]]


def program_of(make: Callable[[Machine], list[Thread]], finish: Any = None) -> Any:
    def program(m: Machine) -> Any:
        return make(m), (finish(m) if finish is not None else None)

    return program


class KeepCurrent(BaseStrategy):
    """Never preempts: the current thread if it may continue, else the first runnable."""

    name = "keep"

    def new_execution(self) -> bool:
        return True

    def next_thread(self, runnable: Sequence[str], current: str | None) -> str:
        return current if current in runnable else runnable[0]

    def next_choice(self, kind: str, site: str, n: int) -> int:
        return 0


def run_once(program: Any, strategy: Any = None, **kw: Any) -> ExecutionResult:
    return Execution(program, strategy or KeepCurrent(), **kw).run()


def findings_over_all_schedules(program: Any, **kw: Any) -> list[list[Finding]]:
    return [r.findings for r in run_all(program, Odometer(), **kw)]


def abba(m: Machine) -> list[Thread]:
    a, b = m.spinlock("A"), m.spinlock("B")

    def t1() -> None:
        spin_lock(a)
        spin_lock(b)
        spin_unlock(b)
        spin_unlock(a)

    def t2() -> None:
        spin_lock(b)
        spin_lock(a)
        spin_unlock(a)
        spin_unlock(b)

    return [Thread("t1", t1), Thread("t2", t2)]


def test_deadlock_names_the_waits_for_cycle() -> None:
    report = explore(program_of(abba), DFSStrategy(), monitors_factory=list)
    assert len(report.findings) == 1
    f, result = report.findings[0]
    assert f.kind == "deadlock"
    assert f.message == "t1 waits for B held by t2; t2 waits for A held by t1"
    assert f.threads == ("t1", "t2")
    assert result.trace[f.step].kind == "finding"


def test_lock_left_held_by_an_ended_thread_deadlocks_its_waiter() -> None:
    def make(m: Machine) -> list[Thread]:
        a = m.spinlock("A")
        return [Thread("t0", lambda: spin_lock(a)), Thread("t1", lambda: spin_lock(a))]

    r = run_once(program_of(make))
    assert [(f.kind, f.message) for f in r.findings] == [
        ("deadlock", "t1 waits for A held by t0 (ended)")
    ]


def test_deadlock_matches_holders_by_name_not_by_prefix() -> None:
    def make(m: Machine) -> list[Thread]:
        a, r = m.spinlock("A"), m.rwlock("R")

        def reader() -> None:
            read_lock(r)
            spin_lock(a)
            spin_unlock(a)
            read_unlock(r)

        def writer() -> None:
            spin_lock(a)
            write_lock(r)
            write_unlock(r)
            spin_unlock(a)

        return [Thread("d0v10", reader), Thread("d0v1", writer)]

    report = explore(program_of(make), DFSStrategy(), monitors_factory=list)
    f = report.findings[0][0]
    assert f.kind == "deadlock"
    assert f.message == ("d0v10 waits for A held by d0v1; d0v1 waits for R held by d0v10 (read)")
    assert f.threads == ("d0v10", "d0v1")


def test_assert_failure_is_an_assertion_finding_and_stops_the_execution() -> None:
    finished = []

    def make(m: Machine) -> list[Thread]:
        x = Atomic(m, "x")

        def check() -> None:
            ASSERT(x.read() == 1, "x == 1")

        def other() -> None:
            x.set(2)
            finished.append(True)

        return [Thread("t0", check), Thread("t1", other)]

    r = run_once(program_of(make))
    assert len(r.findings) == 1
    f = r.findings[0]
    assert f.kind == "assertion"
    assert f.message.startswith("HypervisorPanic: Assertion 'x == 1' failed (at ")
    assert "test_scheduler.py:" in f.message and " check" in f.message
    assert f.threads == ("t0",)
    assert finished == []  # the system is dead: t1 never ran its step


def test_unexpected_exception_is_a_crash_with_the_model_frames() -> None:
    def make(m: Machine) -> list[Thread]:
        x = Atomic(m, "x")

        def lookup() -> None:
            table: dict[int, int] = {}
            table[x.read() + 7] += 1

        return [Thread("t0", lookup)]

    r = run_once(program_of(make))
    assert [f.kind for f in r.findings] == ["crash"]
    assert r.findings[0].message.startswith("KeyError: 7 (at ")
    assert " lookup" in r.findings[0].message


def test_unlocking_a_lock_not_held_panics() -> None:
    def make(m: Machine) -> list[Thread]:
        a = m.spinlock("A")
        return [Thread("t0", lambda: spin_unlock(a))]

    r = run_once(program_of(make))
    assert [f.kind for f in r.findings] == ["assertion"]
    assert r.findings[0].message.startswith("HypervisorPanic: t0 unlocks A held by nobody")


def test_exception_while_booting_is_a_finding_of_context_boot() -> None:
    def program(m: Machine) -> Any:
        raise ZeroDivisionError("division by zero")

    r = run_once(program)
    assert [(f.kind, f.threads) for f in r.findings] == [("crash", ("boot",))]


def test_finding_while_booting_names_the_call_in_progress() -> None:
    def program(m: Machine) -> Any:
        m.sink.call("hvc", "d0v0", abi.regs(abi.FFA_VERSION))
        ASSERT(False, "probe")
        return [], None

    r = run_once(program)
    assert [(f.kind, f.threads, f.calls) for f in r.findings] == [
        ("assertion", ("boot",), ("boot FFA_VERSION",))
    ]


def test_waiter_is_disabled_not_spinning() -> None:
    # t1 holds A for 20 steps; whatever the schedule, t0 attempts A at most twice.
    def make(m: Machine) -> list[Thread]:
        a = m.spinlock("A")
        x = Atomic(m, "x")

        def holder() -> None:
            spin_lock(a)
            for _ in range(20):
                x.inc()
            spin_unlock(a)

        def waiter() -> None:
            spin_lock(a)
            spin_unlock(a)

        return [Thread("t0", waiter), Thread("t1", holder)]

    results = run_all(program_of(make), DFSStrategy("none"))
    assert len(results) > 20
    for r in results:
        attempts = [e for e in r.events if e[0] == "t0"]
        assert len(attempts) <= 3  # attempt, retry after the release, unlock
        assert not r.findings


def test_each_thread_keeps_its_own_machine_current() -> None:
    def make(m: Machine) -> list[Thread]:
        x = Atomic(m, "x")

        def body(ctx: str) -> Callable[[], None]:
            def run() -> None:
                m.current = ctx
                for _ in range(3):
                    x.inc()
                    ASSERT(m.current == ctx, "current restored")
                m.current = "t" + ctx[-1]

            return run

        return [Thread("t0", body("vcpu0")), Thread("t1", body("vcpu1"))]

    results = run_all(program_of(make), DFSStrategy("none"))
    assert len(results) == 20  # C(6, 3)
    assert all(not r.findings for r in results)


def test_no_greenlet_switch_when_the_strategy_keeps_the_current_thread() -> None:
    def make(m: Machine) -> list[Thread]:
        x, y = Atomic(m, "x"), Atomic(m, "y")

        def spin(v: Atomic) -> Callable[[], None]:
            def run() -> None:
                for _ in range(200):
                    v.inc()

            return run

        return [Thread("t0", spin(x)), Thread("t1", spin(y))]

    switches = []

    def tracer(event: str, args: Any) -> None:
        if event in ("switch", "throw"):
            switches.append(event)

    old = greenlet.settrace(tracer)
    try:
        r = run_once(program_of(make))
    finally:
        greenlet.settrace(old)
    assert r.steps == 400 and r.preemptions == 0
    # Priming (in and out of each thread), then each thread once, and each return at its end.
    assert len(switches) <= 8


def test_fault_points_offer_every_allowed_choice_up_to_max_faults() -> None:
    def make(m: Machine) -> list[Thread]:
        def body() -> None:
            for i in range(3):
                m.heap.alloc_page("xen", site=f"s{i}")

        return [Thread("t0", body)]

    def allowed(site: str) -> tuple[int, ...] | None:
        return None if site == "alloc:s1" else (1, 99)  # 99 is not a choice the site offers

    one = run_all(program_of(make), Odometer(), faults=allowed, max_faults=1)
    assert sorted(tuple(s for _, s, _ in r.faults) for r in one) == [
        (),
        ("alloc:s0",),
        ("alloc:s2",),
    ]
    two = run_all(program_of(make), Odometer(), faults=allowed, max_faults=2)
    assert max(len(r.faults) for r in two) == 2
    assert all(len(d.alternatives) == 2 for r in two for d in r.decisions)
    none = run_all(program_of(make), Odometer(), faults=None)
    assert len(none) == 1 and none[0].decisions == []


def test_finish_problems_become_leak_and_spec_findings() -> None:
    def finish(m: Machine) -> Callable[[], list[str]]:
        return lambda: ["leak: 1 page owned by d1", "FFA_VERSION answered 0x10001"]

    r = run_once(program_of(lambda m: [Thread("t0", lambda: None)], finish))
    assert r.problems == ["leak: 1 page owned by d1", "FFA_VERSION answered 0x10001"]
    assert [(f.kind, f.message, f.threads) for f in r.findings] == [
        ("leak", "1 page owned by d1", ("toolstack",)),
        ("spec", "FFA_VERSION answered 0x10001", ("toolstack",)),
    ]


def test_a_spec_problem_that_names_a_thread_is_credited_to_it() -> None:
    lines = ["t1: FFA_RX_RELEASE: got FFA_SUCCESS_32, expected BUSY", "t9: not a thread of ours"]

    def finish(m: Machine) -> Callable[[], list[str]]:
        return lambda: list(lines)

    r = run_once(
        program_of(lambda m: [Thread("t0", lambda: None), Thread("t1", lambda: None)], finish)
    )
    assert [(f.kind, f.threads) for f in r.findings] == [
        ("spec", ("t1",)),
        ("spec", ("toolstack",)),
    ]


def test_max_steps_stops_a_livelock() -> None:
    def make(m: Machine) -> list[Thread]:
        x = Atomic(m, "x")

        def forever() -> None:
            while x.read() == 0:
                pass

        return [Thread("t0", forever)]

    r = run_once(program_of(make), max_steps=50)
    assert [(f.kind, f.message) for f in r.findings] == [
        ("deadlock", "livelock: no end after 50 steps (max_steps)")
    ]
    assert r.steps == 51


def test_strategy_errors_propagate_and_are_not_findings() -> None:
    class Broken(KeepCurrent):
        def next_thread(self, runnable: Sequence[str], current: str | None) -> str:
            raise RuntimeError("strategy bug")

    program = build([[("w", "x")], [("w", "x")]])
    with pytest.raises(RuntimeError, match=r"^strategy bug$"):
        run_once(program, Broken())


def test_strategy_choosing_a_thread_that_cannot_run_is_an_error() -> None:
    class Wrong(KeepCurrent):
        def next_thread(self, runnable: Sequence[str], current: str | None) -> str:
            return "nobody"

    program = build([[("w", "x")], [("w", "x")]])
    with pytest.raises(RuntimeError, match=r"^strategy chose 'nobody', not one of the runnable"):
        run_once(program, Wrong())


class Recorder(Monitor):
    def __init__(self) -> None:
        self.seen: list[tuple[str, ...]] = []

    def on_thread_start(self, thread: str) -> None:
        self.seen.append(("start", thread))

    def on_thread_end(self, thread: str) -> None:
        self.seen.append(("end", thread))

    def on_step(self, thread: str, kind: str, key: object, write: bool) -> None:
        self.seen.append(("step", thread, kind, getattr(key, "name", str(key)), str(write)))

    def acquired(self, lock: Any) -> None:
        self.seen.append(("acquired", self.execution.current_thread, lock.name))

    def on_finish(self) -> None:
        self.seen.append(("finish",))


def test_monitors_see_thread_starts_steps_lock_events_and_the_finish() -> None:
    rec = Recorder()
    program = build([[("lock", "A", [])], [("w", "x")]])
    r = Execution(program, KeepCurrent(), [rec]).run()
    assert not r.findings
    assert rec.seen == [
        ("start", "t0"),
        ("start", "t1"),
        ("step", "t0", "lock", "A", "True"),
        ("acquired", "t0", "A"),
        ("step", "t0", "lock", "A", "True"),
        ("end", "t0"),
        ("step", "t1", "atomic", "x", "True"),
        ("end", "t1"),
        ("finish",),
    ]


def test_monitor_report_names_the_thread_and_its_call_and_stops_at_the_next_point() -> None:
    class Flag(Monitor):
        def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
            self.report("data-race", "flagged")

    def make(m: Machine) -> list[Thread]:
        x = Atomic(m, "x")

        def body() -> None:
            x.inc()
            m.sink.call("hvc", "d0v0", abi.regs(abi.FFA_VERSION))
            x.inc()
            x.inc()

        return [Thread("d0v0", body)]

    r = Execution(program_of(make), KeepCurrent(), [Flag()]).run()
    assert [(f.kind, f.threads, f.calls) for f in r.findings] == [
        ("data-race", ("d0v0",), ("d0v0 FFA_VERSION",))
    ]
    assert r.steps == 1  # stopped at the point after the report


def test_monitor_bug_propagates_as_an_exception() -> None:
    class Buggy(Monitor):
        def on_step(self, thread: str, kind: str, key: object, write: bool) -> None:
            raise ValueError("monitor bug")

    with pytest.raises(ValueError, match=r"^monitor bug$"):
        Execution(build([[("w", "x")]]), KeepCurrent(), [Buggy()]).run()


def test_duplicate_thread_names_are_rejected() -> None:
    def make(m: Machine) -> list[Thread]:
        return [Thread("t0", lambda: None), Thread("t0", lambda: None)]

    with pytest.raises(ValueError, match=r"^program returned duplicate thread names"):
        run_once(program_of(make))


def test_without_trace_findings_have_no_trace_step() -> None:
    r = run_once(program_of(abba), RandomStrategy(seed=3), record_trace=False)
    assert r.trace == []
    assert all(f.step == -1 for f in r.findings)


def test_an_execution_runs_once() -> None:
    ex = Execution(build([[("w", "x")]]), KeepCurrent())
    ex.run()
    with pytest.raises(RuntimeError, match=r"^an Execution runs once"):
        ex.run()


def test_same_decisions_give_the_same_trace() -> None:
    program = program_of(abba)
    first = run_once(program, RandomStrategy(seed=11))
    from ffasim.check.explore import replay

    again = replay(program, first.decisions)
    assert again.trace == first.trace
    assert [(t, k, key_name(key), w) for t, k, key, w in again.events] == [
        (t, k, key_name(key), w) for t, k, key, w in first.events
    ]


# -- explore() ------------------------------------------------------------------------------------
def lost_updates(m: Machine) -> Any:
    """Three unlocked increments; the finish step reports the final value if any was lost."""
    x = Atomic(m, "x")

    def bump() -> None:
        v = x.read()
        x.set(v + 1)

    def finish() -> list[str]:
        return [] if x.value == 3 else [f"x is {x.value} after 3 increments"]

    return [Thread(f"t{i}", bump) for i in range(3)], finish


def test_explore_budget_caps_the_executions() -> None:
    report = explore(
        lost_updates, DFSStrategy("none"), monitors_factory=list, budget=7, stop_on_first=False
    )
    assert report.executions == 7
    assert not report.exhausted


def test_explore_stops_at_the_first_finding() -> None:
    report = explore(lost_updates, DFSStrategy(), monitors_factory=list)
    assert len(report.findings) == 1
    assert report.findings[0][0].message == "x is 2 after 3 increments"
    assert not report.exhausted


def test_explore_keeps_one_execution_per_distinct_finding() -> None:
    report = explore(lost_updates, DFSStrategy(), monitors_factory=list, stop_on_first=False)
    assert report.exhausted
    # "x is 2" and "x is 1" differ only in a number: the same finding.
    assert [f.message for f, _ in report.findings] == ["x is 2 after 3 increments"]
    finding, result = report.findings[0]
    assert result.trace[finding.step].kind == "finding"


def test_finding_key_masks_numbers() -> None:
    a = Finding("leak", "page 0x80001 of d1 leaked at step 12")
    b = Finding("leak", "page 0x80007 of d2 leaked at step 40")
    assert finding_key(a) == finding_key(b) == ("leak", "page # of d# leaked at step #")
    assert finding_key(a) != finding_key(Finding("spec", a.message))


def test_explore_is_deterministic() -> None:
    def run() -> tuple[int, list[Any]]:
        r = explore(
            lost_updates,
            RandomStrategy(seed=4, executions=60),
            monitors_factory=list,
            stop_on_first=False,
        )
        return r.executions, [(f, res.decisions, res.trace) for f, res in r.findings]

    assert run() == run()


class _Clock:
    """A stand-in for ``time.monotonic`` that advances ``tick`` seconds at each reading, so
    that a time limit stops after a known number of executions, whatever the machine."""

    def __init__(self, tick: float) -> None:
        self.now = 0.0
        self.tick = tick
        self.readings = 0

    def monotonic(self) -> float:
        self.readings += 1
        self.now += self.tick
        return self.now


def test_explore_time_limit_stops_an_unbounded_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock(tick=1.0)
    monkeypatch.setattr(explore_module, "time", clock)
    report = explore(
        lost_updates,
        RandomStrategy(seed=0, executions=None),
        monitors_factory=list,
        stop_on_first=False,
        time_limit=3.5,
    )
    # The start is reading 1; readings 2 to 4 (1 to 3 s later) let executions 1 to 3 run,
    # reading 5 (4 s) is past the limit, and reading 6 gives the elapsed time.
    assert report.executions == 3
    assert not report.exhausted
    assert report.stopped == "time-limit"
    assert report.elapsed == 5.0


def test_explore_time_limit_is_checked_before_the_first_execution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(explore_module, "time", _Clock(tick=1.0))
    report = explore(
        lost_updates,
        RandomStrategy(seed=0, executions=None),
        monitors_factory=list,
        stop_on_first=False,
        time_limit=0.5,
    )
    assert (report.executions, report.stopped) == (0, "time-limit")


def test_explore_progress_bar_does_not_change_the_result() -> None:
    quiet = explore(lost_updates, DFSStrategy(), monitors_factory=list, stop_on_first=False)
    shown = explore(
        lost_updates, DFSStrategy(), monitors_factory=list, stop_on_first=False, progress=True
    )
    assert (shown.executions, shown.exhausted) == (quiet.executions, quiet.exhausted)
    assert [f for f, _ in shown.findings] == [f for f, _ in quiet.findings]
