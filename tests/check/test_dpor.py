"""DFS with DPOR against brute force: every Mazurkiewicz trace reached, few redundant schedules.

The number of traces is counted in the test: every interleaving is enumerated by the trivial
odometer scheduler of ``synthetic.py`` and each is identified by its dependence graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthetic import brute_force, build, canonical_trace, run_all

from ffasim.check.explore import explore
from ffasim.check.strategies import DFSStrategy
from ffasim.check.strategies.dfs import NondeterminismError
from ffasim.machine import Atomic, Machine, Spinlock, Thread, spin_lock, spin_unlock
from ffasim.machine.events import ATOMIC, LOCK

VARS = ("x", "y")
LOCKS = ("A", "B")


_simple = st.one_of(
    st.tuples(st.just("r"), st.sampled_from(VARS)),
    st.tuples(st.just("w"), st.sampled_from(VARS)),
    st.tuples(st.just("mem"), st.integers(0, 1), st.booleans()),
)
# Critical sections nest one deep, in either lock order: some programs deadlock.
_inner = st.one_of(
    _simple, st.tuples(st.just("lock"), st.sampled_from(LOCKS), st.lists(_simple, max_size=1))
)
_op = st.one_of(
    _simple, st.tuples(st.just("lock"), st.sampled_from(LOCKS), st.lists(_inner, max_size=2))
)


def _steps(ops: list[tuple[Any, ...]]) -> int:
    return sum(2 + _steps(op[2]) if op[0] == "lock" else 1 for op in ops)


programs = st.lists(st.lists(_op, min_size=1, max_size=3), min_size=2, max_size=3).filter(
    lambda spec: sum(_steps(t) for t in spec) <= 8
)


def _check_against_brute_force(spec: list[list[tuple[Any, ...]]]) -> None:
    program = build(spec)
    every = brute_force(program)
    traces = {canonical_trace(r) for r in every}
    explored = run_all(program, DFSStrategy())
    reached = {canonical_trace(r) for r in explored if not r.pruned}
    assert reached == traces
    assert len(explored) <= 1.5 * len(traces)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(programs)
def test_dpor_reaches_every_trace_within_one_and_a_half_schedules_each(spec: Any) -> None:
    _check_against_brute_force(spec)


def test_dpor_reaches_every_trace_of_a_three_thread_program_with_a_lock() -> None:
    _check_against_brute_force(
        [
            [("r", "x"), ("w", "y"), ("w", "x")],
            [("w", "x"), ("r", "y")],
            [("r", "x"), ("w", "x"), ("lock", "A", [("w", "y")])],
        ]
    )


def test_dpor_reaches_every_trace_with_trylock_and_rwlocks() -> None:
    # Two readers may share R, the writer excludes both; the trylock fails or not.
    _check_against_brute_force(
        [
            [("rlock", "R", []), ("try", "A", [])],
            [("wlock", "R", [])],
            [("rlock", "R", []), ("lock", "A", [])],
        ]
    )


def test_dpor_handles_threads_blocked_on_a_lock() -> None:
    # Three threads contend for one lock around conflicting writes: blocked acquires are
    # disabled threads, and every order of the critical sections is a trace.
    spec = [[("lock", "A", [("w", "x"), ("r", "y")])] for _ in range(3)]
    program = build(spec)
    traces = {canonical_trace(r) for r in brute_force(program)}
    explored = run_all(program, DFSStrategy())
    assert {canonical_trace(r) for r in explored if not r.pruned} == traces
    assert len(explored) <= 1.5 * len(traces)
    # The three critical sections run in every one of the 3! orders.
    orders = {tuple(t for t, k, key, w in r.events if k == "atomic" and w) for r in explored}
    assert len(orders) == 6


def test_dpor_finds_a_bug_planted_in_each_single_trace() -> None:
    spec = [[("w", "x"), ("r", "y")], [("w", "y"), ("r", "x")], [("r", "x"), ("w", "y")]]
    traces = sorted({canonical_trace(r) for r in brute_force(build(spec))}, key=repr)
    assert len(traces) > 4
    for target in traces:

        def oracle(m: Machine, reads: dict[str, list[int]], target: Any = target) -> list[str]:
            # The finish step sees the execution (the machine's sink) and fails on one trace.
            return ["planted"] if canonical_trace(m.sink) == target else []  # type: ignore[arg-type]

        report = explore(build(spec, oracle), DFSStrategy(), monitors_factory=list)
        assert [f.message for f, _ in report.findings] == ["planted"]


def test_dpor_explores_far_fewer_schedules_than_plain_dfs_on_independent_threads() -> None:
    # Four threads on four private variables: one trace, 8!/(2!^4) = 2520 interleavings.
    spec = [[("w", v), ("r", v)] for v in ("a", "b", "c", "d")]
    program = build(spec)
    dpor = explore(program, DFSStrategy(), monitors_factory=list, stop_on_first=False)
    plain = explore(program, DFSStrategy("none"), monitors_factory=list, stop_on_first=False)
    assert dpor.exhausted and plain.exhausted
    assert dpor.executions == 1
    assert plain.executions == 2520


def test_plain_dfs_enumerates_every_interleaving() -> None:
    spec = [[("w", "x"), ("w", "y")], [("r", "x"), ("r", "y")]]
    program = build(spec)
    plain = run_all(program, DFSStrategy("none"))
    assert len(plain) == 6  # C(4, 2)
    assert len({tuple(r.events[i][0] for i in range(4)) for r in plain}) == 6


@pytest.mark.parametrize("bound", [0, 1, 2])
def test_preemption_bound_limits_preemptions(bound: int) -> None:
    spec = [[("w", "x"), ("r", "y"), ("w", "y")], [("w", "y"), ("r", "x"), ("w", "x")]]
    program = build(spec)
    for reduction in ("dpor", "none"):
        explored = run_all(program, DFSStrategy(reduction, preemption_bound=bound))
        assert explored
        assert max(r.preemptions for r in explored) <= bound
        assert all(sum(d.preemption for d in r.decisions) == r.preemptions for r in explored)


def test_preemption_bound_zero_runs_threads_to_completion() -> None:
    spec = [[("w", "x"), ("w", "x")], [("w", "x"), ("w", "x")]]
    explored = run_all(build(spec), DFSStrategy("none", preemption_bound=0))
    # Without preemptions only the choice of who goes first remains.
    assert len(explored) == 2


def test_preemption_bound_one_finds_a_bug_needing_one_preemption() -> None:
    # t1's read-modify-write of x is broken only if t2 runs in between: one preemption.
    def oracle(m: Machine, reads: dict[str, list[int]]) -> list[str]:
        return ["lost update"] if reads["t0"] == [0] and reads["t1"] == [0] else []

    spec = [[("r", "x"), ("w", "x")], [("r", "x"), ("w", "x")]]
    bound0 = explore(build(spec, oracle), DFSStrategy(preemption_bound=0), monitors_factory=list)
    bound1 = explore(build(spec, oracle), DFSStrategy(preemption_bound=1), monitors_factory=list)
    assert not bound0.findings and bound0.exhausted
    assert [f.message for f, _ in bound1.findings] == ["lost update"]
    assert bound1.findings[0][1].preemptions == 1


def test_dpor_explores_every_fault_option() -> None:
    def program(m: Machine) -> Any:
        base = build([[("w", "x")], [("r", "x")]])
        threads, finish = base(m)
        fails = []

        def alloc_then(body: Any) -> Any:
            def run() -> None:
                if m.heap.alloc_page("xen", site="t") is None:
                    fails.append(m.current)
                body()

            return run

        wrapped = [t._replace(body=alloc_then(t.body)) for t in threads]
        return wrapped, finish

    explored = run_all(program, DFSStrategy(), faults=lambda site: (1,), max_faults=1)
    plain = brute_force(program, faults=lambda site: (1,), max_faults=1)
    assert {canonical_trace(r) for r in explored if not r.pruned} == {
        canonical_trace(r) for r in plain
    }
    injected = {tuple(site for _, site, _ in r.faults) for r in explored}
    assert injected == {(), ("alloc:t",)}


def test_dfs_rejects_unknown_reduction() -> None:
    with pytest.raises(ValueError, match=r"^unknown reduction 'fast': expected 'dpor' or 'none'$"):
        DFSStrategy("fast")


def test_dfs_reports_a_program_that_is_not_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    # A snapshot of the boot would hide a boot that differs between executions: boot each.
    monkeypatch.setenv("FFASIM_NO_SNAPSHOT", "1")
    runs = []

    def program(m: Machine) -> Any:
        # Each execution adds a thread: the replayed prefix cannot offer the same choice.
        runs.append(1)
        return build([[("w", "x")] for _ in range(len(runs) + 1)])(m)

    with pytest.raises(
        NondeterminismError, match=r"^decision 0: expected a choice of \('t0', 't1'\)"
    ):
        explore(program, DFSStrategy(), monitors_factory=list, stop_on_first=False)


# -- the conservative fallback ------------------------------------------------------------------
#
# When a race is to be reversed at a node where none of its initials is enabled, the node gets
# every runnable thread (Flanagan & Godefroid's fallback, ``DFSStrategy._reverse``). With the
# machine's primitives that cannot happen: a thread is only disabled waiting for a lock, and the
# release that wakes it is a step its retry depends on, so any initial that was disabled at the
# node comes after a step that is not. The test therefore adds a primitive whose opening wakes
# its waiters *without* being a step they depend on (as a future wait on an event or an
# interrupt might), which is exactly what the fallback exists for.


class _Gate:
    """Waiters are disabled until the gate opens; opening is not a step they depend on."""

    def __init__(self, m: Machine, name: str) -> None:
        self.machine = m
        self.name = name
        self.open = False

    def describe_holder(self) -> str:
        return "nobody (closed)"


def _wait(g: _Gate) -> None:
    m = g.machine
    m.sink.point(ATOMIC, ("gate-wait", g.name, m.current), False)  # a key of its own
    while not g.open:
        m.sink.block(g)  # type: ignore[arg-type]


def _open(g: _Gate) -> None:
    ex: Any = g.machine.sink
    ex.point(ATOMIC, ("gate-open", g.name), True)
    g.open = True
    waiters = list(ex._waiters.get(g, ()))
    ex.released(g)
    # White box: undo the dependency that the scheduler gives every wake-up.
    ex.extra[len(ex.events) - 1].remove((LOCK, g, True))
    for w in waiters:
        ex.pending[w] = (ATOMIC, ("gate-pass", g.name, w), True)


def _gated(spec: list[list[tuple[str, str]]]) -> Any:
    """A program of threads running ``("r"|"w", var)``, ``("lock"|"unlock", lock)`` and
    ``("wait"|"open", gate)``; its finish step returns what each thread read and the final
    values (its observable outcome)."""

    def program(m: Machine) -> Any:
        atomics: dict[str, Atomic] = {}
        locks: dict[str, Spinlock] = {}
        gates: dict[str, _Gate] = {}
        reads: dict[str, list[int]] = {}
        for ops in spec:
            for op, name in ops:
                if op in ("r", "w"):
                    atomics.setdefault(name, Atomic(m, name))
                elif op in ("lock", "unlock") and name not in locks:
                    locks[name] = m.spinlock(name)
                elif op in ("wait", "open"):
                    gates.setdefault(name, _Gate(m, name))

        def body(me: str, token: int, ops: list[tuple[str, str]]) -> Callable[[], None]:
            def run() -> None:
                for op, name in ops:
                    if op == "r":
                        reads[me].append(atomics[name].read())
                    elif op == "w":
                        atomics[name].set(token)
                    elif op == "lock":
                        spin_lock(locks[name])
                    elif op == "unlock":
                        spin_unlock(locks[name])
                    elif op == "wait":
                        _wait(gates[name])
                    else:
                        _open(gates[name])

            return run

        threads = []
        for i, ops in enumerate(spec):
            reads[f"t{i}"] = []
            threads.append(Thread(f"t{i}", body(f"t{i}", i + 1, ops)))

        def finish() -> list[str]:
            final = sorted((n, a.value) for n, a in atomics.items())
            return [f"reads {sorted(reads.items())} final {final}"]

        return threads, finish

    return program


class _FallbackSpy(DFSStrategy):
    """Records each node the fallback filled: (runnable, backtrack after, racing thread)."""

    def __init__(self, preemption_bound: int | None = None) -> None:
        super().__init__(preemption_bound=preemption_bound)
        self.filled: list[tuple[tuple[str, ...], list[str], str]] = []

    def _reverse(self, i: int, j: int, fp_j: Any, tj: int, node: Any, *rest: Any) -> None:
        before = self.fallbacks
        super()._reverse(i, j, fp_j, tj, node, *rest)
        if self.fallbacks > before:
            threads = rest[-1]
            self.filled.append((node.runnable, list(node.backtrack), threads[tj]))


# t0 waits for the gate, then writes x; t1 reads x under M; t2 opens the gate under M. When
# t1 reads x while t2 waits for M, the race of t0's write with that read cannot be reversed
# there (t0 still waits for the gate): the fallback fills the node.
GATED = [
    [("wait", "g"), ("w", "x")],
    [("lock", "M"), ("r", "x"), ("w", "y"), ("unlock", "M")],
    [("lock", "M"), ("r", "y"), ("open", "g"), ("unlock", "M")],
]


def _outcomes(results: list[Any]) -> set[str]:
    return {line for r in results if not r.pruned for line in r.problems}


@pytest.mark.parametrize("bound", [None, 0, 1, 2])
def test_dpor_fallback_runs_and_the_search_stays_complete(bound: int | None) -> None:
    program = _gated(GATED)
    spy = _FallbackSpy(preemption_bound=bound)
    explored = run_all(program, spy)
    naive = run_all(program, DFSStrategy("none", preemption_bound=bound))
    assert spy.fallbacks == len(spy.filled) == 1
    (runnable, backtrack, racing) = spy.filled[0]
    assert racing == "t0" and racing not in runnable
    # Every runnable thread the bound allows: with no preemption, only the one running.
    assert set(backtrack) == ({"t1"} if bound == 0 else set(runnable)) and len(runnable) == 2
    assert _outcomes(explored) == _outcomes(naive)
    assert len(_outcomes(naive)) == 3
