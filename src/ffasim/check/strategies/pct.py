"""PCT: probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte,
"A Randomized Scheduler with Probabilistic Guarantees of Finding Bugs", ASPLOS 2010).

Each execution gives every thread a distinct random priority above ``depth`` and picks
``depth - 1`` change points uniformly among the first ``k`` steps; the highest-priority runnable
thread always runs, and the thread that executes the ``i``-th change point drops to priority
``i``. For a program of ``n`` threads and ``k`` steps, each execution finds a given bug of depth
``d`` (one needing ``d`` ordering constraints) with probability at least ``1 / (n * k**(d-1))``.

Departures from the paper: ``n`` is not known in advance, so a thread draws its priority when
it is first seen (uniform in ``[depth, depth + 1)``: distinct with probability 1, and the
relative order of the threads is a uniform permutation as in the paper); ``k`` is estimated as
the most steps seen so far (``steps_estimate`` until one execution ran), as Coyote does; a change
point takes effect at the next decision after its step (a step between decisions is the only
runnable thread's anyway). Faults are sampled with :class:`~.base.FaultSampler`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .base import BaseStrategy, FaultSampler, derive_rng

if TYPE_CHECKING:
    from ..scheduler import ExecutionResult


class PCTStrategy(BaseStrategy):
    """PCT of depth ``depth`` for ``executions`` executions (``None``: unbounded), numbered
    from ``first`` (a shard's first execution: ``check/shards.py``)."""

    name = "pct"

    def __init__(
        self,
        seed: int = 0,
        depth: int = 3,
        executions: int | None = 1000,
        steps_estimate: int = 50,
        first: int = 0,
    ) -> None:
        if depth < 1:
            raise ValueError("PCT depth must be at least 1")
        self.seed = seed
        self.depth = depth
        self.executions = executions
        self.steps_estimate = max(1, steps_estimate)
        self.k = self.steps_estimate
        """Steps per execution: the guess until an execution ran, then the most seen."""
        self._observed = 0
        self.index = first - 1
        self._rng = derive_rng(seed, 0, "pct")
        self._faults = FaultSampler()
        self._prio: dict[str, float] = {}
        self._change: dict[int, int] = {}
        self._seen = 0

    def new_execution(self) -> bool:
        self.index += 1
        if self.executions is not None and self.index >= self.executions:
            return False
        rng = self._rng = derive_rng(self.seed, self.index, "pct")
        self._prio = {}
        points = rng.sample(range(self.k), min(self.depth - 1, self.k))
        # Invariant: depth - 1 distinct change points (fewer only when k is smaller).
        self._change = {p: i + 1 for i, p in enumerate(points)}
        self._seen = 0
        self._faults.start(derive_rng(self.seed, self.index, "pct-faults"))
        return True

    def next_thread(self, runnable: Sequence[str], current: str | None) -> str:
        prio = self._prio
        if self.execution is not None:
            events = self.execution.events
            change = self._change
            for s in range(self._seen, len(events)):
                i = change.get(s)
                if i is not None:
                    prio[events[s][0]] = i
            self._seen = len(events)
        for t in runnable:
            if t not in prio:
                prio[t] = self.depth + self._rng.random()
        best = runnable[0]
        for t in runnable[1:]:
            if prio[t] > prio[best]:
                best = t
        return best

    def next_choice(self, kind: str, site: str, n: int) -> int:
        return self._faults.choose(n)

    def end_execution(self, result: ExecutionResult) -> None:
        self._observed = max(self._observed, len(result.events))
        self.k = max(1, self._observed)
