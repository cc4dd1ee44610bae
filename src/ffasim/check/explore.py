"""Exploration loop, replay and minimisation: the checker's engine room.

:func:`explore` runs executions under a strategy until it is exhausted, the budget of
executions or the time limit is spent, or (``stop_on_first``) a new finding appears. It keeps
the first execution for each distinct finding (kind and message, with numbers masked) and
replays it with the trace on, so exploration itself runs without one. :func:`replay` runs a
decision list exactly; :func:`minimise` shortens a failing schedule toward fewer preemptions,
then fewer faults and steps, keeping a finding of the same kind.
"""

from __future__ import annotations

import gc
import itertools
import re
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .monitor import Finding, Monitor
from .schedule import FAULT, THREAD, Decision, ReplayDivergence
from .scheduler import Execution, ExecutionResult, FaultFilter, Program
from .snapshot import BootCache
from .strategies.anchored import AnchoredReplay, SwitchRecorder
from .strategies.base import Strategy
from .strategies.dfs import DFSStrategy
from .strategies.replay import ReplayStrategy

MonitorsFactory = Callable[[], list[Monitor]]


@dataclass
class ExploreReport:
    """What an exploration did and found."""

    executions: int = 0
    """Executions run (pruned ones included)."""
    findings: list[tuple[Finding, ExecutionResult]] = field(default_factory=list)
    """The first execution of each distinct finding, replayed with its trace."""
    found_by: list[str] = field(default_factory=list)
    """For each finding, the strategy (or the portfolio's part) whose execution found it."""
    exhausted: bool = False
    """The strategy explored everything it would: every schedule, or every schedule within
    its preemption bound (see ``exhaustive`` and ``covered_bound``)."""
    exhaustive: bool = False
    """Every schedule (and every injectable fault) was explored: nothing was left out."""
    covered_bound: int | None = None
    """Every schedule with at most this many preemptions was explored (``None``: no such
    guarantee). Meaningless when ``exhaustive``."""
    stopped: str = ""
    """Why the exploration ended: ``"exhausted"``, ``"finding"`` (the first one, with
    ``stop_on_first``), ``"budget"``, ``"time-limit"`` or ``"interrupted"`` (Ctrl-C)."""
    notes: list[str] = field(default_factory=list)
    """Distinct accepted consequences the executions reported (not findings)."""
    elapsed: float = 0.0
    """Wall-clock seconds."""
    steps: int = 0
    """Scheduling steps over all executions."""
    pruned: int = 0
    """Executions abandoned as redundant by the strategy (DPOR sleep sets)."""
    max_preemptions: int = 0
    """The most preemptions any execution made."""

    @property
    def found(self) -> bool:
        return bool(self.findings)

    @property
    def rate(self) -> float:
        """Executions per second."""
        return self.executions / self.elapsed if self.elapsed > 0 else 0.0


def finding_key(f: Finding) -> tuple[str, str]:
    """What makes two findings "the same": their kind and message with numbers masked (frame
    numbers, addresses, steps and line numbers vary between schedules of one bug)."""
    return f.kind, _masked(f.message)


def run_execution(
    program: Program,
    strategy: Strategy,
    monitors: Sequence[Monitor] = (),
    *,
    faults: FaultFilter | None = None,
    max_faults: int = 1,
    max_steps: int = 200_000,
    record_trace: bool = True,
    boot_cache: BootCache | None = None,
) -> ExecutionResult:
    """One execution of ``program`` under ``strategy`` (whose ``new_execution`` was called);
    with ``boot_cache``, the booted system is restored from its snapshot when it has one."""
    ex = Execution(
        program,
        strategy,
        monitors,
        faults=faults,
        max_faults=max_faults,
        max_steps=max_steps,
        record_trace=record_trace,
        boot_cache=boot_cache,
    )
    return ex.run()


def replay(
    program: Program,
    decisions: Sequence[Decision],
    *,
    monitors_factory: MonitorsFactory = list,
    faults: FaultFilter | None = None,
    max_faults: int = 1,
    max_steps: int = 200_000,
    record_trace: bool = True,
    strict: bool = True,
    boot_cache: BootCache | None = None,
) -> ExecutionResult:
    """Run ``program`` following ``decisions``. Strict (the default): raise
    :class:`~ffasim.check.schedule.ReplayDivergence` as soon as the execution leaves them or
    ends with some unused. Lenient: take what fits, default the rest (no preemption, no fault).
    """
    strategy = ReplayStrategy(decisions, strict=strict)
    strategy.new_execution()
    result = run_execution(
        program,
        strategy,
        monitors_factory(),
        faults=faults,
        max_faults=max_faults,
        max_steps=max_steps,
        record_trace=record_trace,
        boot_cache=boot_cache,
    )
    if strict:
        strategy.check_complete()
    return result


def explore(
    program: Program,
    strategy: Strategy,
    *,
    monitors_factory: MonitorsFactory,
    budget: int | None = None,
    time_limit: float | None = None,
    stop_on_first: bool = True,
    faults: FaultFilter | None = None,
    max_faults: int = 1,
    max_steps: int = 200_000,
    progress: bool = False,
    catch_interrupt: bool = False,
) -> ExploreReport:
    """Explore ``program`` under ``strategy``.

    ``budget`` caps the executions and ``time_limit`` the seconds (checked between
    executions); ``stop_on_first`` stops at the first finding. With ``catch_interrupt`` (in
    the main thread), Ctrl-C ends the exploration after the current execution and the report
    says so (``stopped == "interrupted"``) with what was found so far; a second Ctrl-C
    interrupts at once. Everything but the elapsed time and how far a time limit or Ctrl-C
    lets the search go is deterministic.
    """
    report = ExploreReport()
    seen: set[tuple[str, str]] = set()
    notes_seen: set[str] = set()
    start = time.monotonic()
    bar = _Progress(budget, time_limit) if progress else None
    interrupt = _Interrupt() if catch_interrupt else None
    boot = BootCache(program, faults, max_faults, max_steps)
    report.stopped = "budget"
    gc_threshold = gc.get_threshold()
    gc.set_threshold(max(gc_threshold[0], GC_YOUNG_THRESHOLD), *gc_threshold[1:])
    try:
        while budget is None or report.executions < budget:
            if interrupt is not None and interrupt.raised:
                report.stopped = "interrupted"
                break
            if time_limit is not None and time.monotonic() - start >= time_limit:
                report.stopped = "time-limit"
                break
            if not strategy.new_execution():
                report.exhausted = True
                report.stopped = "exhausted"
                break
            part = getattr(strategy, "part", "") or strategy.name
            result = run_execution(
                program,
                strategy,
                monitors_factory(),
                faults=faults,
                max_faults=max_faults,
                max_steps=max_steps,
                record_trace=False,
                boot_cache=boot,
            )
            strategy.end_execution(result)
            report.executions += 1
            report.steps += result.steps
            report.pruned += result.pruned
            report.max_preemptions = max(report.max_preemptions, result.preemptions)
            for note in result.notes:
                masked = re.sub(r"-> [A-Z_]+", "->", _masked(note))  # one note per rule
                if masked not in notes_seen:
                    notes_seen.add(masked)
                    report.notes.append(note)
            fresh = []
            for f in result.findings:
                if finding_key(f) not in seen:
                    seen.add(finding_key(f))
                    fresh.append(f)
            if fresh:
                found = _with_trace(
                    program, fresh, result, monitors_factory, faults, max_faults, max_steps, boot
                )
                report.findings.extend(found)
                report.found_by.extend(part for _ in found)
            if bar is not None:
                bar.update(report, time.monotonic() - start)
            if fresh and stop_on_first:
                report.stopped = "finding"
                break
    finally:
        gc.set_threshold(*gc_threshold)
        if interrupt is not None:
            interrupt.restore()
        report.elapsed = time.monotonic() - start
        if bar is not None:
            bar.close(report)
    report.exhaustive = report.exhausted and bool(getattr(strategy, "exhaustive", True))
    bound = getattr(strategy, "covered_bound", None)
    if bound is None and report.exhausted and not report.exhaustive:
        bound = getattr(strategy, "bound", None)  # dfs under --preemption-bound: all of it
    report.covered_bound = bound
    return report


GC_YOUNG_THRESHOLD = 20_000
"""Allocations between two young-generation collections while exploring (Python's default is
700). An execution allocates thousands of short-lived objects (its system, trace, decisions);
at the default, every few executions pay a full collection that walks the whole heap, the
strategy's search state included: about a tenth of the CPU time of a small scenario."""


class _Interrupt:
    """While installed, the first SIGINT sets ``raised`` instead of raising
    ``KeyboardInterrupt`` (the exploration stops between executions and reports); the second
    raises as usual. A no-op outside the main thread, where signals cannot be handled."""

    def __init__(self) -> None:
        self.raised = False
        self._previous: Any = None
        self._installed = threading.current_thread() is threading.main_thread()
        if self._installed:
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    def restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False


def _masked(text: str) -> str:
    return re.sub(r"0x[0-9a-fA-F]+|\d+", "#", text)


def _with_trace(
    program: Program,
    fresh: list[Finding],
    result: ExecutionResult,
    monitors_factory: MonitorsFactory,
    faults: FaultFilter | None,
    max_faults: int,
    max_steps: int,
    boot: BootCache | None = None,
) -> list[tuple[Finding, ExecutionResult]]:
    """Replay a failing execution once with the trace on; each new finding of it is paired
    with the replay (its replayed copy carries its trace step)."""
    try:
        again = replay(
            program,
            result.decisions,
            monitors_factory=monitors_factory,
            faults=faults,
            max_faults=max_faults,
            max_steps=max_steps,
            record_trace=True,
            boot_cache=boot,
        )
    except ReplayDivergence:
        again = None  # not reproducible: keep what the exploration saw
    out: list[tuple[Finding, ExecutionResult]] = []
    for f in fresh:
        key = finding_key(f)
        match = None
        if again is not None:
            match = next((g for g in again.findings if finding_key(g) == key), None)
        # Without a match the program is not deterministic: keep the original.
        out.append((match, again) if match is not None and again is not None else (f, result))
    return out


def _cost(result: ExecutionResult) -> tuple[int, int, int]:
    return result.preemptions, len(result.faults), result.steps


def minimise(
    program: Program,
    result: ExecutionResult,
    monitors_factory: MonitorsFactory,
    *,
    faults: FaultFilter | None = None,
    max_faults: int = 1,
    max_steps: int = 200_000,
    kind: str | None = None,
    max_attempts: int = 400,
) -> ExecutionResult:
    """A schedule with a finding of the same kind as ``result``'s first (or ``kind``) and
    fewer preemptions, then fewer faults, then fewer steps, if one is found.

    Deterministic, in three phases, all within ``max_attempts`` executions:

    1. Greedy passes over the decision list (delta debugging): turn one preemption into "keep
       running the current thread" (keeping or dropping the decisions after it), drop one
       injected fault, cut the list short. A candidate replays leniently (decisions that no
       longer fit take the default: no preemption, no fault) and is kept when it still finds
       ``kind`` and costs less; passes repeat until none improves. Then the same for the
       preemptions as anchored switches ("at T's n-th step, run U": strategies/anchored.py),
       where dropping one leaves the others where they were.
    2. If preemptions remain, iterative preemption bounding (CHESS): exhaustive DFS with DPOR
       under a bound of 0, 1, ... below the current count, half the attempts left each, for
       the same finding (same kind and message, numbers masked). Removing one preemption from
       a schedule rarely keeps a bug (the later decisions shift); a bounded search finds the
       schedule with the fewest preemptions directly.
    3. Greedy passes again on that schedule, for faults and steps.

    The result is an exact execution with its trace: its own decisions replay strictly.
    """
    if not result.findings and kind is None:
        return result
    want = kind or result.findings[0].kind
    want_keys = {finding_key(f) for f in result.findings if f.kind == want}
    best = result
    attempts = 0
    boot = BootCache(program, faults, max_faults, max_steps)

    def run(strategy: Strategy) -> ExecutionResult:
        nonlocal attempts
        attempts += 1
        return run_execution(
            program,
            strategy,
            monitors_factory(),
            faults=faults,
            max_faults=max_faults,
            max_steps=max_steps,
            record_trace=False,
            boot_cache=boot,
        )

    def better(r: ExecutionResult, same_message: bool) -> bool:
        if same_message:
            ok = any(finding_key(f) in want_keys for f in r.findings)
        else:
            ok = any(f.kind == want for f in r.findings)
        return ok and _cost(r) < _cost(best)

    def greedy() -> None:
        nonlocal best
        improved = True
        while improved and attempts < max_attempts:
            improved = False
            for cand in _candidates(best.decisions):
                if attempts >= max_attempts:
                    return
                strategy = ReplayStrategy(cand, strict=False)
                strategy.new_execution()
                r = run(strategy)
                if better(r, False):
                    best = r
                    improved = True
                    break

    def drop_switches() -> None:
        """Drop preemptions one at a time, the others anchored where they were."""
        nonlocal best
        improved = True
        # With one preemption left, phase 2 (bound 0) says whether none will do.
        while improved and best.preemptions > 1 and attempts < max_attempts:
            improved = False
            recorder = SwitchRecorder(best.decisions)
            recorder.new_execution()
            run(recorder)
            switches = recorder.switches
            preempting = [i for i, sw in enumerate(switches) if sw.preemption]
            # One switch at a time, then two in a row (a thread lent the CPU and took it back),
            # then one whose target starts first instead (it was preempted to run early).
            drops: list[tuple[tuple[int, ...], str | None]] = [
                ((i,), None) for i in reversed(preempting)
            ]
            drops += [((i, j), None) for i, j in itertools.pairwise(preempting)]
            drops += [((i,), switches[i].to) for i in preempting]
            for drop, first in drops:
                if attempts >= max_attempts:
                    break
                kept = [sw for k, sw in enumerate(switches) if k not in drop]
                strategy = AnchoredReplay(kept, recorder.faults, first=first)
                strategy.new_execution()
                r = run(strategy)
                if better(r, False):
                    best = r
                    improved = True
                    break

    greedy()
    drop_switches()
    if best.preemptions > 0 and attempts < max_attempts:
        for bound in range(best.preemptions):
            # Half of what is left for each bound: a small bound's search is often exhausted
            # early and leaves the rest to the next; a large one cannot starve the others.
            share = max(1, (max_attempts - attempts) // 2)
            dfs = DFSStrategy(preemption_bound=bound)
            spent = 0
            found = None
            while spent < share and attempts < max_attempts and dfs.new_execution():
                r = run(dfs)
                dfs.end_execution(r)
                spent += 1
                if better(r, True):
                    found = r
                    break
            if found is not None:
                best = found
                break
        greedy()
    if best is result:
        return result
    # Re-run the winner exactly, with its trace, for the report.
    return replay(
        program,
        best.decisions,
        monitors_factory=monitors_factory,
        faults=faults,
        max_faults=max_faults,
        max_steps=max_steps,
        record_trace=True,
        boot_cache=boot,
    )


def _candidates(decs: list[Decision]) -> list[list[Decision]]:
    """Smaller variants of a decision list, most promising first."""
    out: list[list[Decision]] = []
    for i in reversed(range(len(decs))):
        d = decs[i]
        if d.kind == THREAD and d.preemption:
            keep = Decision(THREAD, d.current, d.alternatives, d.site, d.current)
            out.append([*decs[:i], keep, *decs[i + 1 :]])
            out.append([*decs[:i], keep])
    for i, d in enumerate(decs):
        if d.kind == FAULT and d.chosen != 0:
            none = Decision(FAULT, 0, d.alternatives, d.site, d.current)
            out.append([*decs[:i], none, *decs[i + 1 :]])
    n = len(decs)
    cut = n // 2
    while cut >= 1:
        out.append(list(decs[: n - cut]))
        cut //= 2
    return out


class _Progress:
    """A rich progress bar on stderr (so that it shows while stdout goes to a file): executions
    out of the budget, or seconds out of the time limit when that ends the run first;
    findings; executions per second."""

    def __init__(self, budget: int | None, time_limit: float | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        # The bar follows the time limit when no budget is given (a --time-limit run), else
        # the budget; the other bound still ends the run, as explore() checks both.
        self._by_time = time_limit is not None and budget is None
        columns = [SpinnerColumn(), TextColumn("[bold]exploring")]
        if self._by_time:
            columns += [BarColumn(), TextColumn("{task.fields[executions]} executions")]
            total: float | None = time_limit
        elif budget is not None:
            columns += [BarColumn(), MofNCompleteColumn()]
            total = budget
        else:
            columns += [TextColumn("{task.fields[executions]} executions")]
            total = None
        columns += [
            TextColumn("{task.fields[findings]} findings"),
            TextColumn("{task.fields[rate]:.0f}/s"),
            TimeElapsedColumn(),
        ]
        self._progress = Progress(*columns, transient=True, console=Console(stderr=True))
        self._task = self._progress.add_task(
            "explore", total=total, findings=0, rate=0.0, executions=0
        )
        self._progress.start()
        self._last = 0.0

    def update(self, report: ExploreReport, elapsed: float) -> None:
        if elapsed - self._last < 0.1:
            return
        self._last = elapsed
        rate = report.executions / elapsed if elapsed > 0 else 0.0
        self._progress.update(
            self._task,
            completed=elapsed if self._by_time else report.executions,
            executions=report.executions,
            findings=len(report.findings),
            rate=rate,
        )

    def close(self, report: ExploreReport) -> None:
        if not self._by_time:
            self._progress.update(self._task, completed=report.executions)
        self._progress.stop()
