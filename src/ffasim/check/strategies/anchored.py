"""Anchored replay: a schedule as "at thread T's n-th step, switch to U", for minimisation.

A recorded schedule is a list of decisions by position. Remove one preemption and every later
decision shifts: the next one lands at another thread's point, and the schedule that showed the
bug falls apart. Anchored to the thread that was running and how many steps it had taken, the
other switches stay where they were when one is removed, so delta debugging can drop the
preemptions a finding does not need one at a time (the idea of CHESS's and shuttle's schedule
shrinking: switches, not positions). Fault decisions are kept by site and occurrence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..schedule import FAULT, THREAD, Decision
from .base import BaseStrategy

if TYPE_CHECKING:
    from ..scheduler import ExecutionResult


@dataclass(frozen=True)
class Switch:
    """At the ``at``-th step of ``thread`` (its own steps counted), run ``to``; ``preemption``
    when ``thread`` could have gone on."""

    thread: str
    at: int
    to: str
    preemption: bool


class _Counting(BaseStrategy):
    """Counts each thread's steps from the execution's events, as they grow."""

    def _reset(self) -> None:
        self._counts: dict[str, int] = {}
        self._seen = 0

    def _last(self) -> tuple[str, int]:
        """The thread that took the last step and how many steps it has taken."""
        assert self.execution is not None
        events = self.execution.events
        for thread, *_ in events[self._seen :]:
            self._counts[thread] = self._counts.get(thread, 0) + 1
        self._seen = len(events)
        if not events:
            return "", 0
        last = events[-1][0]
        return last, self._counts[last]


class AnchoredReplay(_Counting):
    """Runs ``switches`` and ``faults`` (``(site, occurrence) -> option``): at each scheduling
    point, ``first`` before any step was taken, else the switch anchored there if its target
    can run, else the current thread, else the first runnable one; a fault site takes its
    recorded option, else none. One execution."""

    name = "anchored"

    def __init__(
        self,
        switches: Sequence[Switch],
        faults: dict[tuple[str, int], int],
        *,
        first: str | None = None,
    ) -> None:
        self.switches = {(s.thread, s.at): s.to for s in switches}
        self.faults = faults
        self.first = first
        self._started = False

    def new_execution(self) -> bool:
        if self._started:
            return False
        self._started = True
        self._reset()
        self._sites: dict[str, int] = {}
        return True

    def next_thread(self, runnable: Sequence[str], current: str | None) -> str:
        anchor = self._last()
        if anchor == ("", 0) and self.first is not None and self.first in runnable:
            return self.first
        to = self.switches.get(anchor)
        if to is not None and to in runnable:
            return to
        if current is not None and current in runnable:
            return current
        return runnable[0]

    def next_choice(self, kind: str, site: str, n: int) -> int:
        k = self._sites.get(site, 0)
        self._sites[site] = k + 1
        option = self.faults.get((site, k), 0)
        return option if option < n else 0


class SwitchRecorder(_Counting):
    """Replays ``decisions`` exactly and records them as :class:`Switch` anchors and fault
    ``(site, occurrence) -> option``: the input of :class:`AnchoredReplay`."""

    name = "record-switches"

    def __init__(self, decisions: Sequence[Decision]) -> None:
        self.decisions = list(decisions)
        self.switches: list[Switch] = []
        self.faults: dict[tuple[str, int], int] = {}
        self._started = False

    def new_execution(self) -> bool:
        if self._started:
            return False
        self._started = True
        self._reset()
        self._index = 0
        self._sites: dict[str, int] = {}
        return True

    def _next(self, kind: str) -> Decision | None:
        if self._index >= len(self.decisions):
            return None
        d = self.decisions[self._index]
        self._index += 1
        return d if d.kind == kind else None

    def next_thread(self, runnable: Sequence[str], current: str | None) -> str:
        d = self._next(THREAD)
        chosen = str(d.chosen) if d is not None and d.chosen in runnable else None
        if chosen is None:
            chosen = current if current is not None and current in runnable else runnable[0]
        thread, at = self._last()
        if chosen != current:
            preempts = current is not None and current in runnable
            self.switches.append(Switch(thread, at, chosen, preempts))
        return chosen

    def next_choice(self, kind: str, site: str, n: int) -> int:
        k = self._sites.get(site, 0)
        self._sites[site] = k + 1
        d = self._next(FAULT)
        option = int(d.chosen) if d is not None and d.site == site and int(d.chosen) < n else 0
        if option:
            self.faults[(site, k)] = option
        return option

    def end_execution(self, result: ExecutionResult) -> None:
        return None
