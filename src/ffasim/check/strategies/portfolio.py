"""The default search: iterative preemption bounding, PCT and random, taking turns.

Most concurrency bugs need few preemptions (Musuvathi & Qadeer, "Iterative Context Bounding
for Systematic Testing of Multithreaded Programs", PLDI 2007, the method of CHESS), and a
randomised scheduler finds a shallow bug in a handful of executions where an exhaustive search
may reach it only after thousands (shuttle and Coyote make PCT and random their defaults). So
no single strategy is the right default: this one runs three, in turn, one execution each, on a
shared budget and time limit:

- *iterative preemption bounding*: exhaustive DFS with DPOR under a preemption bound of 0,
  then 1, then 2 (each level from scratch, as CHESS does), then without a bound. A level that
  ends without the bound ever ruling out a choice has covered every schedule, and so has the
  unbounded one: the whole search is then exhaustive and stops, as ``dfs`` would. Beyond 2
  the bounded levels cost more than plain DPOR with sleep sets (under a bound sleep sets are
  off and backtracking is conservative), so the last level drops the bound: small scenarios
  are proved clean in a few hundred executions, large ones keep the bound-2 guarantee.
  ``max_bound`` makes the levels 0 to ``max_bound``, all bounded (then only PCT and random go
  on).
- *PCT* of depth 3 (``pct.py``) and *uniform random* (``random.py``), each deterministic from the
  seed, sampling faults as they do.

The rotation gives preemption bounding half of the executions (it is the part with
guarantees) and PCT and random a quarter each. Which part found a finding is reported
(:attr:`part`). Deterministic: the same seed makes the same executions in the same order;
only a time limit changes how far it gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .base import BaseStrategy
from .dfs import DFSStrategy
from .pct import PCTStrategy
from .random import RandomStrategy

if TYPE_CHECKING:
    from ..scheduler import Execution, ExecutionResult

ROTATION: tuple[str, ...] = ("ipb", "pct", "ipb", "random")
"""Which part runs each execution, in turn."""


class PortfolioStrategy(BaseStrategy):
    """Iterative preemption bounding (from ``0`` up to ``max_bound``, ``None``: no cap), PCT
    of depth ``pct_depth`` and random, from ``seed``, taking turns."""

    name = "portfolio"

    def __init__(self, seed: int = 0, max_bound: int | None = None, pct_depth: int = 3) -> None:
        if max_bound is not None and max_bound < 0:
            raise ValueError("the preemption bound must be >= 0")
        self.seed = seed
        self.max_bound = max_bound
        levels: list[int | None] = [0, 1, 2, None]
        if max_bound is not None:
            levels = list(range(max_bound + 1))
        self._levels = levels[1:]
        self.dfs: DFSStrategy | None = DFSStrategy(preemption_bound=levels[0])
        self.pct = PCTStrategy(seed=seed, depth=pct_depth, executions=None)
        self.random = RandomStrategy(seed=seed, executions=None)
        self.covered_bound: int | None = None
        """The highest preemption bound whose every schedule was explored."""
        self.exhaustive = False
        """Every schedule was explored (a bounding level never met its bound)."""
        self.part = ""
        """The part running the current execution: ``"dfs (bound 1)"``, ``"pct"``, ``"random"``."""
        self._turn = -1
        self._current: DFSStrategy | PCTStrategy | RandomStrategy = self.random

    def new_execution(self) -> bool:
        if self.exhaustive:
            return False
        for _ in ROTATION:
            self._turn += 1
            which = ROTATION[self._turn % len(ROTATION)]
            if which == "ipb":
                if self._next_bounded():
                    return True
                if self.exhaustive:
                    return False
                continue
            member = self.pct if which == "pct" else self.random
            member.new_execution()
            self._current = member
            self.part = which
            return True
        raise AssertionError("unreachable: random always has another execution")

    def _next_bounded(self) -> bool:
        """Start the next execution of preemption bounding, moving up a level when one is
        explored; ``False`` when there is nothing left to bound (see ``exhaustive``)."""
        while self.dfs is not None:
            if self.dfs.new_execution():
                self._current = self.dfs
                bound = self.dfs.bound
                self.part = "dfs" if bound is None else f"dfs (bound {bound})"
                return True
            if self.dfs.exhaustive:  # unbounded, or the bound never mattered
                self.exhaustive = True
                self.dfs = None
                return False
            self.covered_bound = self.dfs.bound
            if not self._levels:
                self.dfs = None
                return False
            self.dfs = DFSStrategy(preemption_bound=self._levels.pop(0))
        return False

    # -- the protocol: the running part decides ---------------------------------------------------
    def begin(self, execution: Execution) -> None:
        self.execution = execution
        self._current.begin(execution)

    def next_thread(self, runnable: Sequence[str], current: str | None) -> str | None:
        return self._current.next_thread(runnable, current)

    def next_choice(self, kind: str, site: str, n: int) -> int:
        return self._current.next_choice(kind, site, n)

    def end_execution(self, result: ExecutionResult) -> None:
        self._current.end_execution(result)
