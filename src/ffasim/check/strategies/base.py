"""The strategy protocol: how the scheduler asks who runs next and which fault to inject.

The protocol follows shuttle's ``Scheduler``: :meth:`Strategy.new_execution` starts an execution
(``False``: the exploration is over); during it, :meth:`Strategy.next_thread` picks one of the
runnable threads at every point where more than one could run, and :meth:`Strategy.next_choice`
picks an option at every eligible fault site (option 0 is "no fault"); afterwards
:meth:`Strategy.end_execution` sees the result (DPOR analyses its races there). A strategy may
also define ``begin(execution)``, called when the execution starts, to look at the pending
operations of the threads (``execution.pending``) and the steps so far (``execution.events``).

Every strategy is deterministic from its seed: two explorations with the same arguments make
the same decisions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..scheduler import Execution, ExecutionResult


class Strategy(Protocol):
    """What the scheduler needs from a search strategy."""

    name: str

    def new_execution(self) -> bool:
        """Prepare the next execution; ``False`` when the exploration is done."""
        ...

    def next_thread(self, runnable: Sequence[str], current: str | None) -> str | None:
        """One of ``runnable`` (at least two, in thread order) to run next. ``current`` is the
        thread at its scheduling point (still runnable), or ``None`` when the running thread
        cannot continue (blocked or ended): then no choice is a preemption. ``None`` abandons
        the execution as redundant."""
        ...

    def next_choice(self, kind: str, site: str, n: int) -> int:
        """An option in ``range(n)`` at a decision of ``kind`` (``"fault"``) at ``site``."""
        ...

    def end_execution(self, result: ExecutionResult) -> None:
        """The execution ended with ``result``."""
        ...


class BaseStrategy:
    """Defaults for the optional hooks; ``execution`` is the running execution."""

    name = "base"
    execution: Execution | None = None

    def begin(self, execution: Execution) -> None:
        self.execution = execution

    def end_execution(self, result: ExecutionResult) -> None:
        return None


def derive_rng(seed: int, index: int, salt: str = "") -> random.Random:
    """A generator for execution ``index`` of a search seeded with ``seed``: independent of
    Python's hash seed and of every other execution (string seeds hash with SHA-512)."""
    return random.Random(f"ffasim:{salt}:{seed}:{index}")


class FaultSampler:
    """Samples at most one fault per execution uniformly over (fault site occurrence, option).

    Choosing uniformly at every site would almost always inject at the first eligible site.
    Instead, half of the executions inject nothing; the others pick an occurrence index below
    an estimate of how many eligible occurrences an execution meets (learnt from the previous
    executions) and inject a uniformly chosen fault there. With ``max_faults`` above one, each
    later fault is sampled the same way among the remaining occurrences.
    """

    def __init__(self) -> None:
        self.estimate = 4
        self._seen = 0
        self._target = -1
        self._rng = random.Random(0)

    def start(self, rng: random.Random) -> None:
        self.estimate = max(self.estimate, self._seen)
        self._seen = 0
        self._rng = rng
        self._target = -1 if rng.random() < 0.5 else rng.randrange(self.estimate)

    def choose(self, n: int) -> int:
        occurrence = self._seen
        self._seen += 1
        if occurrence == self._target:
            self._target = occurrence + 1 + self._rng.randrange(self.estimate)
            return 1 + self._rng.randrange(n - 1)
        return 0
