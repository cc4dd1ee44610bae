"""What a worker runs: a chunk of PCT or random executions, or a piece of the DPOR tree.

A worker gets a :class:`Setup` (a picklable *source* that rebuilds the program, its monitors
and its fault filter; programs and greenlets never cross a process boundary) and a task:

- :class:`ChunkTask`: executions ``first .. first + count - 1`` of PCT or random from ``seed``.
  Execution ``i`` takes its schedule from ``(seed, i)`` alone, and the strategy's estimates
  (PCT's step count, the fault sampler's) start afresh at each chunk, so a chunk's
  executions do not depend on which worker runs it, nor on the other chunks;
- :class:`DporTask`: a DFS with DPOR from a stack that an earlier task's
  :meth:`~.strategies.dfs.DFSStrategy.split` returned (``None``: from the root), for at most
  ``budget`` executions; what is left is split again, and the branches its races add to
  nodes above its floor come back as requests (``parallel.py`` merges them).

Each execution comes back as a :class:`Run`: counts, notes and findings (with the decisions
to replay them), never the execution itself.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .explore import MonitorsFactory, run_execution
from .monitor import Finding
from .schedule import Decision
from .scheduler import ExecutionResult, FaultFilter, Program
from .strategies.base import Strategy
from .strategies.dfs import DFSStrategy, _Node
from .strategies.pct import PCTStrategy
from .strategies.random import RandomStrategy


class ProgramSource(Protocol):
    """A picklable, hashable description that rebuilds a program in any process (for a
    scenario: its name or path, the variant and the fault specs)."""

    def build(self) -> tuple[Program, MonitorsFactory, FaultFilter | None]: ...


@dataclass(frozen=True)
class Setup:
    """The program of an exploration and the limits of its executions."""

    source: Any  # a ProgramSource
    max_faults: int = 1
    max_steps: int = 200_000


@dataclass(frozen=True)
class Run:
    """One execution, as the coordinator needs it."""

    steps: int
    preemptions: int
    pruned: bool
    notes: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    decisions: tuple[Decision, ...] = ()
    """Only for an execution with findings (to replay it)."""
    faults: tuple[tuple[int, str, int], ...] = ()

    def result(self) -> ExecutionResult:
        """An :class:`ExecutionResult` without events or trace (what a replay starts from)."""
        return ExecutionResult(
            decisions=list(self.decisions),
            findings=list(self.findings),
            trace=[],
            steps=self.steps,
            preemptions=self.preemptions,
            faults=list(self.faults),
            problems=[],
            pruned=self.pruned,
            notes=list(self.notes),
        )


@dataclass(frozen=True)
class ChunkTask:
    setup: Setup
    kind: str  # "pct" or "random"
    seed: int
    first: int
    count: int
    deadline: float | None = None
    """``time.time()`` after which no execution starts."""
    depth: int = 3


@dataclass
class ChunkResult:
    runs: list[Run]
    sites: frozenset[str] = frozenset()


@dataclass(frozen=True)
class DporTask:
    setup: Setup
    nodes: list[_Node] | None
    floor: int
    bound: int | None
    budget: int
    parts: int
    deadline: float | None = None
    reduction: str = "dpor"


@dataclass
class DporResult:
    runs: list[Run]
    parts: list[tuple[list[_Node], int]]
    """What is left of this task's subtree, as stacks for new tasks (empty: all done)."""
    requests: list[tuple[int, str]] = field(default_factory=list)
    claims: list[tuple[tuple[str | int, ...], tuple[str, ...]]] = field(default_factory=list)
    bound_hit: bool = False
    sites: frozenset[str] = frozenset()


_built: dict[Any, tuple[Program, MonitorsFactory, FaultFilter | None]] = {}


def built(setup: Setup) -> tuple[Program, MonitorsFactory, FaultFilter | None]:
    """The program of ``setup``, built once per process."""
    try:
        key: Any = hash(setup.source) and setup.source
    except TypeError:  # a source holding lists: by its pickle
        key = pickle.dumps(setup.source)
    got = _built.get(key)
    if got is None:
        got = _built[key] = setup.source.build()
    return got


def _sites(faults: FaultFilter | None) -> frozenset[str]:
    seen = getattr(faults, "seen", None)
    return frozenset(seen) if seen else frozenset()


def _run(setup: Setup, strategy: Strategy, each: Callable[[ExecutionResult], None]) -> Run:
    program, monitors_factory, faults = built(setup)
    r = run_execution(
        program,
        strategy,
        monitors_factory(),
        faults=faults,
        max_faults=setup.max_faults,
        max_steps=setup.max_steps,
        record_trace=False,
    )
    each(r)
    found = tuple(r.findings)
    return Run(
        steps=r.steps,
        preemptions=r.preemptions,
        pruned=r.pruned,
        notes=tuple(r.notes),
        findings=found,
        decisions=tuple(r.decisions) if found else (),
        faults=tuple(r.faults),
    )


def _late(deadline: float | None) -> bool:
    return deadline is not None and time.time() >= deadline


def run_chunk(task: ChunkTask) -> ChunkResult:
    """Executions ``task.first ..`` of PCT or random."""
    strategy: PCTStrategy | RandomStrategy
    if task.kind == "pct":
        strategy = PCTStrategy(task.seed, task.depth, executions=None, first=task.first)
    else:
        strategy = RandomStrategy(task.seed, executions=None, first=task.first)
    runs: list[Run] = []
    for _ in range(task.count):
        if _late(task.deadline):
            break
        strategy.new_execution()
        runs.append(_run(task.setup, strategy, strategy.end_execution))
    return ChunkResult(runs, _sites(built(task.setup)[2]))


def run_dpor(task: DporTask) -> DporResult:
    """At most ``task.budget`` executions of the DFS below ``task.nodes``, and what is left."""
    if task.nodes is None:
        dfs = DFSStrategy(task.reduction, task.bound)
        dfs.claims = []
    else:
        dfs = DFSStrategy.resume(task.nodes, task.floor, task.reduction, task.bound)
    runs: list[Run] = []
    more = True
    while len(runs) < task.budget and not _late(task.deadline):
        if not dfs.new_execution():
            more = False
            break
        runs.append(_run(task.setup, dfs, dfs.end_execution))
    return DporResult(
        runs=runs,
        parts=dfs.split(task.parts) if more else [],
        requests=list(dfs.requests),
        claims=list(dfs.claims or ()),
        bound_hit=dfs.bound_hit,
        sites=_sites(built(task.setup)[2]),
    )
