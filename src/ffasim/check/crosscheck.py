"""Cross-checking the reduction: DPOR must reach what every schedule reaches.

Partial-order reduction skips schedules that only reorder independent steps. It is sound only
if every dependence is visible to it: a piece of shared state that the model touches without
a scheduling point or a declared access (``EventSink.access``), or a monitor whose verdict
depends on such state, makes it skip schedules that end differently, and an "exhaustive"
search then misses findings. The cross-check runs a program under the naive enumeration (every
schedule: ``DFSStrategy(reduction="none")``) and under DPOR, with the same preemption bound
and faults, and compares what each reached: the set of *outcomes*, an outcome being the
findings of an execution and, when it ran to its end, a fingerprint of the terminal state
(:mod:`.digest`). DPOR may reach each outcome through fewer schedules, but it must reach every
one, and no other.

Only small programs (or small bounds) are practical: the naive enumeration is exponential.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..machine import Machine, Thread
from .explore import MonitorsFactory, finding_key, run_execution
from .scheduler import FaultFilter, Program
from .strategies.dfs import DFSStrategy

StateOf = Callable[[Machine], str]
"""What a terminal state is: a fingerprint of the program's state, from its machine."""


@dataclass(frozen=True, order=True)
class Outcome:
    """How one execution ended: its findings (kind and message, numbers masked) and, if it
    ran to its end, the fingerprint of its terminal state (``""`` otherwise)."""

    findings: tuple[tuple[str, str], ...]
    state: str

    def describe(self) -> str:
        what = "; ".join(f"{k}: {m}" for k, m in self.findings) or "no finding"
        return f"{what} (state {self.state[:12] or 'not reached'})"


@dataclass
class Reached:
    """Every outcome one search reached, and what it cost."""

    outcomes: dict[Outcome, list[Any]] = field(default_factory=dict)
    """Each outcome, with the decisions of the first execution that reached it."""
    executions: int = 0
    pruned: int = 0
    exhausted: bool = False


@dataclass
class CrossCheck:
    """The naive enumeration and DPOR side by side."""

    naive: Reached
    dpor: Reached

    @property
    def missed(self) -> list[Outcome]:
        """Outcomes every-schedule reached and DPOR did not: a dependence DPOR cannot see."""
        return sorted(set(self.naive.outcomes) - set(self.dpor.outcomes))

    @property
    def extra(self) -> list[Outcome]:
        """Outcomes only DPOR reached: the program is not deterministic."""
        return sorted(set(self.dpor.outcomes) - set(self.naive.outcomes))

    @property
    def agree(self) -> bool:
        return self.naive.exhausted and self.dpor.exhausted and not self.missed and not self.extra


def _observed(program: Program, state_of: StateOf, cell: list[str]) -> Program:
    """``program`` with its finish step preceded by a fingerprint of the state (into ``cell``)."""

    def wrapped(m: Machine) -> tuple[list[Thread], Callable[[], list[str]] | None]:
        threads, finish = program(m)

        def fin() -> list[str]:
            cell.append(state_of(m))
            return finish() if finish is not None else []

        return threads, fin

    return wrapped


def reach(
    program: Program,
    strategy: DFSStrategy,
    state_of: StateOf,
    *,
    monitors_factory: MonitorsFactory = list,
    faults: FaultFilter | None = None,
    max_faults: int = 1,
    budget: int | None = None,
) -> Reached:
    """Every outcome ``strategy`` reaches on ``program`` (no stop on findings)."""
    out = Reached()
    cell: list[str] = []
    observed = _observed(program, state_of, cell)
    while budget is None or out.executions < budget:
        if not strategy.new_execution():
            out.exhausted = True
            break
        cell.clear()
        result = run_execution(
            observed,
            strategy,
            monitors_factory(),
            faults=faults,
            max_faults=max_faults,
            record_trace=False,
        )
        strategy.end_execution(result)
        out.executions += 1
        if result.pruned:
            out.pruned += 1
            continue
        keys = tuple(sorted({finding_key(f) for f in result.findings}))
        outcome = Outcome(keys, cell[0] if cell else "")
        out.outcomes.setdefault(outcome, list(result.decisions))
    return out


def cross_check(
    program: Program,
    state_of: StateOf,
    *,
    preemption_bound: int | None = None,
    monitors_factory: MonitorsFactory = list,
    faults: FaultFilter | None = None,
    max_faults: int = 1,
    budget: int | None = None,
) -> CrossCheck:
    """Run ``program`` under the naive enumeration and under DPOR (same bound, same faults)
    and return both sets of outcomes; ``budget`` caps each search's executions."""
    kw: dict[str, Any] = dict(
        monitors_factory=monitors_factory, faults=faults, max_faults=max_faults, budget=budget
    )
    naive = reach(program, DFSStrategy("none", preemption_bound), state_of, **kw)
    dpor = reach(program, DFSStrategy("dpor", preemption_bound), state_of, **kw)
    return CrossCheck(naive, dpor)
