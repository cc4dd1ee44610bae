"""Uniform random scheduling: at every decision, any runnable thread with equal probability.

The baseline of every randomised concurrency tester (shuttle's ``RandomScheduler``). Cheap, and
good at shallow bugs; PCT gives better guarantees for bugs of small depth. Faults are sampled
with :class:`~.base.FaultSampler`. Deterministic from ``seed``: execution ``i`` uses a generator
derived from ``(seed, i)`` only.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import BaseStrategy, FaultSampler, derive_rng


class RandomStrategy(BaseStrategy):
    """``executions`` random schedules (``None``: unbounded; the explorer's budget stops it),
    numbered from ``first`` (a shard's first execution: ``check/shards.py``)."""

    name = "random"

    def __init__(self, seed: int = 0, executions: int | None = 1000, first: int = 0) -> None:
        self.seed = seed
        self.executions = executions
        self.index = first - 1
        self._rng = derive_rng(seed, 0, "random")
        self._faults = FaultSampler()

    def new_execution(self) -> bool:
        self.index += 1
        if self.executions is not None and self.index >= self.executions:
            return False
        self._rng = derive_rng(self.seed, self.index, "random")
        self._faults.start(derive_rng(self.seed, self.index, "random-faults"))
        return True

    def next_thread(self, runnable: Sequence[str], current: str | None) -> str:
        return runnable[self._rng.randrange(len(runnable))]

    def next_choice(self, kind: str, site: str, n: int) -> int:
        return self._faults.choose(n)
