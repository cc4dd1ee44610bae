"""Uniform random scheduling and fault sampling: determinism and coverage."""

from __future__ import annotations

from collections import Counter
from typing import Any

from synthetic import build, key_name, run_all

from ffasim.check.strategies import RandomStrategy
from ffasim.machine import Machine, Thread


def _orders(seed: int, executions: int = 200) -> list[tuple[str, ...]]:
    program = build([[("w", "x")], [("w", "x")], [("w", "x")]])
    results = run_all(program, RandomStrategy(seed=seed, executions=executions))
    return [tuple(t for t, *_ in r.events) for r in results]


def test_random_same_seed_same_schedule() -> None:
    assert _orders(3) == _orders(3)


def test_random_different_seeds_differ() -> None:
    assert _orders(3) != _orders(4)


def test_random_reaches_every_order_roughly_uniformly() -> None:
    counts = Counter(_orders(1, 1200))
    # Three threads, one step each: 6 orders; uniform choice at each decision gives each 1/6.
    assert len(counts) == 6
    assert all(120 <= c <= 280 for c in counts.values())


def test_random_stops_after_its_executions() -> None:
    program = build([[("w", "x")], [("w", "x")]])
    assert len(run_all(program, RandomStrategy(seed=0, executions=17))) == 17


def test_random_samples_faults_at_every_site() -> None:
    def program(m: Machine) -> Any:
        def body() -> None:
            for i in range(4):
                m.heap.alloc_page("xen", site=f"s{i}")

        return [Thread("t0", body)], None

    results = run_all(program, RandomStrategy(seed=2, executions=400), faults=lambda s: (1,))
    sites = Counter(site for r in results for _, site, _ in r.faults)
    none = sum(1 for r in results if not r.faults)
    assert set(sites) == {"alloc:s0", "alloc:s1", "alloc:s2", "alloc:s3"}
    assert 120 <= none <= 280  # about half of the executions inject nothing
    assert all(len(r.faults) <= 1 for r in results)


def test_random_events_use_stable_keys() -> None:
    program = build([[("w", "x"), ("r", "y")], [("w", "y")]])
    results = run_all(program, RandomStrategy(seed=9, executions=5))
    assert {key_name(k) for r in results for _, _, k, _ in r.events} == {"x", "y"}
