"""PCT: the probabilistic guarantee of Burckhardt et al. on a depth-2 bug, determinism."""

from __future__ import annotations

from typing import Any

from synthetic import build, key_name, run_all

from ffasim.check.strategies import PCTStrategy
from ffasim.machine import ASSERT, Atomic, Machine, Thread

PRIVATE_STEPS = 10


def use_after_free(m: Machine) -> Any:
    """A depth-2 bug: ``b`` frees ``p`` (read, then clear) exactly between ``a``'s publication
    and its use; both threads first do private work, so the window is one step wide."""
    p, own_a, own_b = Atomic(m, "p"), Atomic(m, "own_a"), Atomic(m, "own_b")

    def a() -> None:
        for _ in range(PRIVATE_STEPS):
            own_a.inc()
        p.set(1)
        ASSERT(p.read() == 1, "p still valid")

    def b() -> None:
        for _ in range(PRIVATE_STEPS):
            own_b.inc()
        if p.read() == 1:
            p.set(0)

    return [Thread("a", a), Thread("b", b)], None


def test_pct_finds_a_depth_two_bug_at_the_promised_rate() -> None:
    n = 2
    executions = hits = 0
    k = 0
    for seed in range(10):
        results = run_all(use_after_free, PCTStrategy(seed=seed, depth=2, executions=300))
        executions += len(results)
        hits += sum(1 for r in results if r.findings)
        k = max(k, *(len(r.events) for r in results))
        assert all(f.kind == "assertion" for r in results for f in r.findings)
    bound = 1 / (n * k ** (2 - 1))
    assert k in (2 * PRIVATE_STEPS + 3, 2 * PRIVATE_STEPS + 4)  # b clears p or not
    # The bound holds per execution; allow a quarter of slack for sampling noise.
    assert hits / executions >= 0.75 * bound


def test_pct_depth_one_never_preempts() -> None:
    program = build([[("w", "x"), ("r", "y"), ("w", "x")], [("w", "y"), ("r", "x")]])
    results = run_all(program, PCTStrategy(seed=5, depth=1, executions=50))
    assert len(results) == 50
    assert all(r.preemptions == 0 for r in results)
    # Only the priority order differs: one thread runs to the end, then the other.
    firsts = {r.events[0][0] for r in results}
    assert firsts == {"t0", "t1"}


def _schedules(seed: int) -> list[list[tuple[str, str, str, bool]]]:
    program = build([[("w", "x"), ("r", "y"), ("w", "x")], [("w", "y"), ("r", "x"), ("w", "y")]])
    results = run_all(program, PCTStrategy(seed=seed, depth=3, executions=40))
    return [[(t, k, key_name(key), w) for t, k, key, w in r.events] for r in results]


def test_pct_same_seed_same_schedule() -> None:
    assert _schedules(7) == _schedules(7)


def test_pct_different_seeds_explore_differently() -> None:
    assert _schedules(7) != _schedules(8)


def test_pct_learns_the_number_of_steps() -> None:
    strategy = PCTStrategy(seed=0, depth=2, executions=3, steps_estimate=1)
    run_all(use_after_free, strategy)
    assert strategy.k >= 2 * PRIVATE_STEPS + 3
