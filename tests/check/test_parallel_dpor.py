"""The DPOR tree split into shards reaches every outcome that every schedule reaches.

A sharded DFS (``check/parallel.py``) never backtracks above a task's floor: the branches its
races add up there come back as requests, and a requested branch sleeps only on siblings whose
footprint is known. Each test explores a program in shards as small as possible (one or two
executions per task, so that the tree is split and requests flow at every step) and compares
the outcomes (findings, and a fingerprint of the terminal state) with the naive enumeration
of ``check/crosscheck.py``, as ``test_crosscheck.py`` does for the sequential DPOR.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from programs import primitive_program, primitive_specs, state_of, system_program, system_specs

from ffasim.check.crosscheck import Outcome
from ffasim.check.explore import finding_key, run_execution
from ffasim.check.faults import parse_faults
from ffasim.check.monitors import default_monitors
from ffasim.check.parallel import explore_parallel
from ffasim.check.pools import InlinePool
from ffasim.check.scheduler import NOTE_PREFIX
from ffasim.check.shards import Run
from ffasim.check.strategies import DFSStrategy
from ffasim.machine import Machine, Thread

STATE = "terminal state "


def _observed(program: Any) -> Any:
    """``program`` whose finish step also reports the terminal state, as a note."""

    def wrapped(m: Machine) -> tuple[list[Thread], Callable[[], list[str]] | None]:
        threads, finish = program(m)

        def fin() -> list[str]:
            state = f"{NOTE_PREFIX}{STATE}{state_of(m)}"
            return [state, *(finish() if finish is not None else [])]

        return threads, fin

    return wrapped


def _alloc_faults(site: str) -> tuple[int, ...] | None:
    return (1,) if site.startswith("alloc:") else None


@dataclass(frozen=True)
class Source:
    """A generated program, as a shard rebuilds it (the spec pickles; the program does not)."""

    spec: Any
    system: bool = False
    faults: str = ""

    def build(self) -> Any:
        spec = self.spec
        program = system_program(spec) if self.system else primitive_program(spec)
        faults = None
        if self.faults == "alloc":
            faults = _alloc_faults
        elif self.faults:
            faults = parse_faults([self.faults])
        return _observed(program), default_monitors, faults


def _outcome(run: Run) -> Outcome:
    state = next((n[len(STATE) :] for n in run.notes if n.startswith(STATE)), "")
    return Outcome(tuple(sorted({finding_key(f) for f in run.findings})), state)


def _sharded(source: Source, bound: int | None, per_task: int) -> set[Outcome]:
    runs: list[Run] = []
    report, _ = explore_parallel(
        source,
        "dfs",
        preemption_bound=bound,
        pool=InlinePool(),
        stop_on_first=False,
        dpor={"budget": lambda generation: per_task, "parts": 2},
        keep_runs=runs,
    )
    assert report.exhausted
    return {_outcome(r) for r in runs if not r.pruned}


def _naive_outcomes(source: Source, bound: int | None) -> set[Outcome]:
    """Every outcome of every schedule, read the way the shards report them."""
    program, monitors, faults = source.build()
    strategy = DFSStrategy("none", bound)
    out: set[Outcome] = set()
    while strategy.new_execution():
        r = run_execution(program, strategy, monitors(), faults=faults, record_trace=False)
        strategy.end_execution(r)
        run = Run(r.steps, r.preemptions, r.pruned, tuple(r.notes), tuple(r.findings))
        out.add(_outcome(run))
    return out


def _tuples(x: Any) -> Any:
    return tuple(_tuples(y) for y in x) if isinstance(x, (list, tuple)) else x


def _fast(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )


@_fast(120)
@given(primitive_specs())
def test_sharded_dpor_reaches_every_outcome_of_primitive_programs(spec: Any) -> None:
    source = Source(_tuples(spec), faults="alloc")
    assert _sharded(source, None, 1) == _naive_outcomes(source, None), spec


@pytest.mark.parametrize("bound", [0, 1])
def test_sharded_bounded_dpor_reaches_every_outcome_within_the_bound(bound: int) -> None:
    @_fast(60)
    @given(primitive_specs())
    def check(spec: Any) -> None:
        source = Source(_tuples(spec), faults="alloc")
        assert _sharded(source, bound, 2) == _naive_outcomes(source, bound), spec

    check()


@_fast(10)
@given(system_specs)
def test_sharded_dpor_reaches_every_outcome_of_system_programs(spec: Any) -> None:
    source = Source(_tuples(spec), system=True)
    assert _sharded(source, 1, 1) == _naive_outcomes(source, 1), spec


@_fast(6)
@given(system_specs)
def test_sharded_dpor_reaches_every_outcome_with_injected_smc_faults(spec: Any) -> None:
    source = Source(_tuples(spec), system=True, faults="smc:*:DENIED")
    assert _sharded(source, 0, 1) == _naive_outcomes(source, 0), spec
