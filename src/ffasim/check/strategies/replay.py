"""Replay: follow a recorded list of decisions exactly, and fail loudly when the run leaves it.

Strict replay (``ffasim replay FILE``) raises :class:`~ffasim.check.schedule.ReplayDivergence`
naming the step, the decision the schedule expects and what the execution offers, whenever they
differ, when the execution needs more decisions than recorded, or (through :meth:`check_complete`)
when it ends with decisions left over. Lenient replay (minimisation) takes a recorded decision
when it fits, and otherwise the default: keep the current thread (no preemption) or inject no
fault; decisions past the end get the default too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..schedule import FAULT, THREAD, Decision, ReplayDivergence
from .base import BaseStrategy

if TYPE_CHECKING:
    from ..scheduler import ExecutionResult


class ReplayStrategy(BaseStrategy):
    """Replays ``decisions`` in one execution (``new_execution`` is true once)."""

    name = "replay"

    def __init__(self, decisions: Sequence[Decision], *, strict: bool = True) -> None:
        self.decisions = list(decisions)
        self.strict = strict
        self.index = 0
        self._started = False

    def new_execution(self) -> bool:
        if self._started:
            return False
        self._started = True
        self.index = 0
        return True

    def _step(self) -> int:
        return self.execution.step if self.execution is not None else -1

    def _next(self, kind: str, possible: str) -> Decision | None:
        i = self.index
        self.index += 1
        if i >= len(self.decisions):
            if self.strict:
                raise ReplayDivergence(self._step(), i, "the end of the schedule", possible)
            return None
        d = self.decisions[i]
        if d.kind != kind:
            if self.strict:
                raise ReplayDivergence(self._step(), i, d.describe(), possible)
            return None
        return d

    def next_thread(self, runnable: Sequence[str], current: str | None) -> str:
        possible = "a choice of " + ", ".join(runnable)
        d = self._next(THREAD, possible)
        if d is not None and d.chosen in runnable:
            if self.strict and tuple(runnable) != d.alternatives:
                raise ReplayDivergence(self._step(), self.index - 1, d.describe(), possible)
            return str(d.chosen)
        if self.strict:
            assert d is not None
            raise ReplayDivergence(self._step(), self.index - 1, d.describe(), possible)
        if current is not None and current in runnable:
            return current
        return runnable[0]

    def next_choice(self, kind: str, site: str, n: int) -> int:
        possible = f"{kind} at {site} with {n} options"
        d = self._next(FAULT, possible)
        if d is not None and d.site == site and len(d.alternatives) == n:
            return int(d.chosen)
        if self.strict:
            assert d is not None
            raise ReplayDivergence(self._step(), self.index - 1, d.describe(), possible)
        return 0

    def check_complete(self) -> None:
        """Raise ``ReplayDivergence`` if the execution ended before using every decision."""
        if self.index < len(self.decisions):
            d = self.decisions[self.index]
            raise ReplayDivergence(
                self._step(), self.index, d.describe(), "the end of the execution"
            )

    def end_execution(self, result: ExecutionResult) -> None:
        return None
