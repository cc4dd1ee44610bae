"""Parallel exploration: one search split into shards that workers run, merged so that the
same seed gives the same findings and verdict whatever the number of workers.

Design note
-----------
Every execution of a search gets a *key*, a place in a canonical order that does not depend
on the workers; the report is what the executions with a key below a limit ``V`` found, in key
order, as :func:`~.explore.explore` would report them in execution order. ``V`` is the first
of: the budget (the key after the ``budget``-th execution), the first finding (the key after
the first execution with one, under ``stop_on_first``), the end of an exhaustive search.
Workers keep running every piece of work whose keys may lie below ``V``, and the work that
cannot (a chunk that starts past it) is cancelled; so the first finding reported is the
first in key order, not the first to arrive.

- *PCT and random* (``shards.ChunkTask``): execution ``j`` is drawn from ``(seed, j)``; the
  executions are dealt in chunks of consecutive indices (any free worker takes the next
  chunk). Key ``j`` (in the portfolio ``4j + 1`` for PCT and ``4j + 3`` for random, its
  rotation). A chunk's strategy starts its estimates (PCT's steps, the fault sampler's
  occurrences) afresh, so the executions are a function of the chunk size, never of the
  workers.
- *DFS with DPOR* (``shards.DporTask``): a task runs the DFS below a stack of decisions for
  at most a budget of executions, then splits what is left
  (:meth:`~.strategies.dfs.DFSStrategy.split`: each of the shallowest nodes with branches left
  on its own, the deeper ones together) into child tasks, dealt at once. A task's result
  depends on its stack alone, so the tree of tasks grown from a root is the same whatever
  the workers. When none is left (an *epoch*), the runs are numbered in task order (breadth
  first: the budget is shared by subtrees side by side; key ``k``, in the portfolio ``2k``:
  half of the rotation) and the requests, merged in that order, root the next epoch.

  Exactness: a task never backtracks above its floor; when its race analysis adds a branch to
  a node above the floor (another task's), the branch comes back as a *request*, and the
  coordinator makes it a task of the next epoch unless it was explored or given out already
  (``claimed``: every branch a task was given or reported). Sleep sets stay sound: a branch
  only ever sleeps on siblings given out *before* it (the order of a node's backtrack
  list), whose subtrees their tasks finish; a sibling whose footprint is not known yet (a
  request's siblings still being explored, a step whose fault options are) lends the sleep
  set nothing, which only costs executions. So the parallel search reaches every outcome the
  sequential one does (``tests/check/test_parallel_dpor.py`` checks it against the naive
  enumeration of ``crosscheck.py``), sometimes through more executions.
- *The portfolio* runs the bounded levels one after the other as DFS epochs, and PCT and
  random as chunks, all in one pool.

``workers`` only sets how many tasks run at once; the backend (``pools.py``) where.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .explore import ExploreReport, _Interrupt, _masked, _Progress, _with_trace, finding_key
from .pools import Pool, open_pool
from .schedule import FAULT
from .shards import (
    ChunkTask,
    DporResult,
    DporTask,
    Run,
    Setup,
    built,
    run_chunk,
    run_dpor,
)
from .strategies.dfs import _frozen, _Node

CHUNK = 24
"""PCT and random executions per task."""

DPOR_PARTS = 6
"""At most this many tasks from what one DPOR task leaves."""

INF = float("inf")


def dpor_budget(depth: int) -> int:
    """Executions per DPOR task at ``depth`` in the tree of tasks: few at first, so that the
    tree is split early, more later, so that a task's start is paid rarely."""
    return min(48, 4 << depth)


@dataclass(frozen=True)
class _Keyed:
    key: int
    run: Run
    part: str


class _Chunks:
    """PCT or random executions, dealt in chunks of consecutive indices."""

    def __init__(self, kind: str, seed: int, depth: int, size: int, scale: int, offset: int):
        self.kind = kind
        self.part = kind
        self.seed = seed
        self.depth = depth
        self.size = size
        self.scale = scale
        self.offset = offset
        self.next = 0
        self.todo: list[int] = []  # chunks dealt, then cancelled: deal again if needed
        self.runs: list[_Keyed] = []
        self.finished = False

    def key(self, j: int) -> int:
        return self.scale * j + self.offset

    def count_below(self, x: float) -> float:
        return max(0.0, -(-(x - self.offset) // self.scale))

    def _start(self) -> int:
        return min(self.todo) if self.todo else self.next

    def next_key(self) -> int:
        return self.key(self._start())

    def want(self, v: float) -> bool:
        return self.next_key() < v

    def task(
        self, setup: Setup, deadline: float | None, v: float
    ) -> tuple[Callable[..., Any], Any, Any]:
        first = self._start()
        if self.todo:
            self.todo.remove(first)
        else:
            self.next += self.size
        t = ChunkTask(setup, self.kind, self.seed, first, self.size, deadline, self.depth)
        return run_chunk, t, first

    def useless(self, first: Any, v: float) -> bool:
        return bool(self.key(first) >= v)

    def dropped(self, first: Any) -> None:
        self.todo.append(first)

    def accept(self, first: Any, res: Any) -> None:
        self.runs += [_Keyed(self.key(first + i), r, self.part) for i, r in enumerate(res.runs)]

    def settle(self, v: float) -> None:
        return None


TaskId = tuple[int, ...]
"""``(epoch, k, child, grandchild...)``: where a task sits in its epoch's tree of tasks."""


def _order(tid: TaskId) -> tuple[int, TaskId]:
    """Tasks in breadth-first order: by depth, then left to right. Runs are numbered in this
    order, so a budget that a deep (or endless) subtree would use up on its own is shared
    by the subtrees side by side, which run in parallel."""
    return len(tid), tid


class _Dpor:
    """DFS with DPOR, level after level of preemption bounds, in epochs of tasks."""

    def __init__(
        self,
        levels: list[int | None],
        scale: int,
        name: str,
        parts: int = DPOR_PARTS,
        budget: Callable[[int], int] = dpor_budget,
        reduction: str = "dpor",
        stop_on_first: bool = False,
    ) -> None:
        self.levels = levels
        self.stop_on_first = stop_on_first
        self.scale = scale
        self.name = name
        self.parts = parts
        self.budget = budget
        self.reduction = reduction
        self.runs: list[_Keyed] = []
        self.finished = False
        self.exhaustive = False
        self.cut = False
        self.level_ends: list[tuple[int | None, int]] = []
        """``(bound, runs so far)`` when each bounded level ended with its bound met."""
        self.level = 0
        self.epoch = 0
        self._new_level()

    def _new_level(self) -> None:
        self.bound = self.levels[self.level]
        self.part = self.name if self.bound is None else f"{self.name} (bound {self.bound})"
        self.claimed: dict[tuple[str | int, ...], set[str]] = {}
        self.bound_hit = False
        self._new_epoch([(None, 0)])

    def _new_epoch(self, roots: list[tuple[list[_Node] | None, int]]) -> None:
        self.epoch += 1
        self.tasks: dict[TaskId, tuple[list[_Node] | None, int]] = {
            (self.epoch, k): root for k, root in enumerate(roots)
        }
        self.ready: list[TaskId] = sorted(self.tasks)
        self.results: dict[TaskId, DporResult] = {}
        self.found: list[TaskId] = []  # tasks with a finding
        self.out = 0  # tasks dealt and not back
        self.flying: dict[TaskId, int] = {}  # those tasks, with their budgets

    def key(self, k: int) -> int:
        return self.scale * k

    def count_below(self, x: float) -> float:
        n = max(0.0, -(-x // self.scale))
        return min(n, len(self.runs)) if self.finished else n

    def next_key(self) -> int:
        return self.key(len(self.runs))

    def _before(self, tid: TaskId) -> int:
        """How many runs come before task ``tid`` for sure (those of the tasks done that
        precede it): its first key is at least the key of that many runs."""
        me = _order(tid)
        return len(self.runs) + sum(len(r.runs) for t, r in self.results.items() if _order(t) < me)

    def _dealable(self, tid: TaskId, v: float, guess: bool = True) -> bool:
        """Whether task ``tid`` may have runs below ``v``: not after a task that found
        something (under stop-at-first), and not when enough runs precede it. With
        ``guess``, the tasks before it still running count as using their whole budget:
        a guess that only delays it (it is dealt when they are back, if still needed)."""
        me = _order(tid)
        if self.stop_on_first and any(_order(t) < me for t in self.found):
            return False
        before = self._before(tid)
        if guess:
            before += sum(n for t, n in self.flying.items() if _order(t) < me)
        return self.key(before) < v

    def want(self, v: float) -> bool:
        return not self.finished and any(self._dealable(t, v) for t in self.ready)

    def task(
        self, setup: Setup, deadline: float | None, v: float
    ) -> tuple[Callable[..., Any], Any, Any]:
        tid = min((t for t in self.ready if self._dealable(t, v)), key=_order)
        self.ready.remove(tid)
        self.out += 1
        self.flying[tid] = self.budget(len(tid) - 2)
        nodes, floor = self.tasks[tid]
        t = DporTask(
            setup,
            nodes,
            floor,
            self.bound,
            self.budget(len(tid) - 2),
            self.parts,
            deadline,
            self.reduction,
        )
        return run_dpor, t, tid

    def useless(self, tid: Any, v: float) -> bool:
        return not self._dealable(tid, v, guess=False)

    def dropped(self, tid: Any) -> None:
        self.out -= 1
        self.flying.pop(tid, None)
        self.ready.append(tid)

    def accept(self, tid: Any, res: Any) -> None:
        self.out -= 1
        self.flying.pop(tid, None)
        self.results[tid] = res
        if any(run.findings for run in res.runs):
            self.found.append(tid)
        for k, part in enumerate(res.parts):  # the children depend on this task alone
            self.tasks[(*tid, k)] = part
            self.ready.append((*tid, k))

    def settle(self, v: float) -> None:
        """End the epoch once every task that may count ran."""
        if self.finished or self.out or any(self._dealable(t, v, False) for t in self.ready):
            return
        self._end_epoch()

    def _end_epoch(self) -> None:
        """Number the epoch's runs in task order (:func:`_order`), then turn the requests
        into the next epoch's tasks (all merged in that order)."""
        order = sorted(self.results, key=_order)
        if self.ready:  # the rest cannot count: the level ends here, cut short
            first_left = _order(min(self.ready, key=_order))
            order = [t for t in order if _order(t) < first_left]
            self.cut = self.finished = True
        done = [self.results[t] for t in order]
        for res in done:
            self.runs += [
                _Keyed(self.key(len(self.runs) + i), run, self.part)
                for i, run in enumerate(res.runs)
            ]
        if self.cut:
            return
        claimed = self.claimed
        for res in done:
            self.bound_hit |= res.bound_hit
            for path, branches in res.claims:
                claimed.setdefault(path, set()).update(branches)
        roots: dict[tuple[str | int, ...], _Node] = {}
        for t in order:
            nodes, floor = self.tasks[t]
            if nodes is not None:
                path = tuple(n.chosen for n in nodes[:floor])
                claimed.setdefault(path, set()).update(nodes[floor].backtrack)
        new: list[tuple[list[_Node] | None, int]] = []
        for t, res in zip(order, done, strict=True):
            given = self.tasks[t][0]
            for depth, q in res.requests:
                assert given is not None  # the root task has no floor to request below
                node = given[depth]
                path = tuple(n.chosen for n in given[:depth])
                have = claimed.setdefault(path, set())
                have.update(node.backtrack)
                if q in have or q in node.sleep:
                    continue
                have.add(q)
                there = roots.get(path)
                if there is not None:
                    there.backtrack.append(q)
                    continue
                root = _request_root(node, given, depth, have, q)
                roots[path] = root
                new.append(([_frozen(n) for n in given[:depth]] + [root], depth))
        if new:
            self._new_epoch(new)
            return
        if not self.bound_hit:
            self.exhaustive = self.finished = True
            return
        self.level_ends.append((self.bound, len(self.runs)))
        self.level += 1
        if self.level < len(self.levels):
            self._new_level()
        else:
            self.finished = True

    def covered(self, v: float) -> int | None:
        """The highest bound whose every schedule was explored by executions below ``v``."""
        out = None
        for bound, n in self.level_ends:
            if n == 0 or self.key(n - 1) < v:
                out = bound
        return out


def _request_root(node: _Node, given: list[_Node], depth: int, have: set[str], q: str) -> _Node:
    """The root of a task for the requested branch ``q`` at ``node`` (``given[depth]``,
    whose branches ``have`` were given out before): ``q`` sleeps on the siblings whose
    footprint is known and complete (those the snapshot says were done, and the one it was
    on unless its step holds fault decisions), and on no other."""
    root = node.clone()
    root.backtrack = [*sorted(have - {q}), q]
    root.done = [t for t in root.backtrack if t not in (q, root.chosen)]
    known = {t: node.fp[t] for t in node.done if t in node.fp}
    chosen = str(node.chosen)
    faulty = depth + 1 < len(given) and given[depth + 1].kind == FAULT
    if chosen in node.fp and not faulty:
        known[chosen] = node.fp[chosen]
    root.fp = known
    return root


_Stream = _Chunks | _Dpor


def _streams(
    strategy: str,
    *,
    seed: int,
    preemption_bound: int | None,
    pct_depth: int,
    chunk: int,
    dpor: dict[str, Any],
) -> tuple[list[_Stream], _Dpor | None]:
    if strategy == "dfs":
        d = _Dpor([preemption_bound], 1, "dfs", **dpor)
        return [d], d
    if strategy in ("pct", "random"):
        return [_Chunks(strategy, seed, pct_depth, chunk, 1, 0)], None
    if strategy == "portfolio":
        levels: list[int | None] = [0, 1, 2, None]
        if preemption_bound is not None:
            levels = list(range(preemption_bound + 1))
        d = _Dpor(levels, 2, "dfs", **dpor)
        pct = _Chunks("pct", seed, pct_depth, chunk, 4, 1)
        rnd = _Chunks("random", seed, pct_depth, chunk, 4, 3)
        return [d, pct, rnd], d
    raise ValueError(f"unknown strategy {strategy!r}")


def _budget_limit(streams: list[_Stream], budget: int | None) -> float:
    """The key after the ``budget``-th execution in key order (``inf``: never reached)."""
    if budget is None:
        return INF

    def count(x: float) -> float:
        return sum(s.count_below(x) for s in streams)

    hi = 4 * budget + 8
    if count(hi) < budget:
        return INF
    lo = 0
    while lo < hi:  # the least x with count(x) >= budget
        mid = (lo + hi) // 2
        if count(mid) >= budget:
            hi = mid
        else:
            lo = mid + 1
    return float(lo)


@dataclass
class _Seen:
    executions: int = 0
    findings: list[Any] | None = None


def explore_parallel(
    source: Any,
    strategy: str = "portfolio",
    *,
    seed: int = 0,
    preemption_bound: int | None = None,
    pct_depth: int = 3,
    workers: int = 2,
    backend: str = "local",
    ray_address: str | None = None,
    pool: Pool | None = None,
    budget: int | None = None,
    time_limit: float | None = None,
    stop_on_first: bool = True,
    max_faults: int = 1,
    max_steps: int = 200_000,
    progress: bool = False,
    catch_interrupt: bool = False,
    chunk: int = CHUNK,
    dpor: dict[str, Any] | None = None,
    keep_runs: list[Run] | None = None,
) -> tuple[ExploreReport, frozenset[str]]:
    """Explore the program ``source`` builds (a ``shards.ProgramSource``) with ``strategy``
    (``portfolio``, ``dfs``, ``pct`` or ``random``) on ``workers`` of ``backend`` (or on
    ``pool``), as :func:`~.explore.explore` would with the same arguments, and return the
    report and the fault sites the executions offered. ``chunk`` and ``dpor`` (``parts``,
    ``budget``: a function of a task's depth, ``reduction``) shape the tasks; the report
    depends on them and on the seed, never on the workers. ``keep_runs`` (a list) receives
    each execution the report counts, in key order (for tests and tools)."""
    setup = Setup(source, max_faults, max_steps)
    program, monitors_factory, faults = built(setup)  # here too: to replay findings
    streams, tree = _streams(
        strategy,
        seed=seed,
        preemption_bound=preemption_bound,
        pct_depth=pct_depth,
        chunk=chunk,
        dpor={"stop_on_first": stop_on_first, **(dpor or {})},
    )
    start = time.monotonic()
    deadline = None if time_limit is None else time.time() + time_limit
    bar = _Progress(budget, time_limit) if progress else None
    own = pool is None
    interrupt: _Interrupt | None = None
    flight: dict[Any, tuple[_Stream, int]] = {}
    sites: set[str] = set()
    seen = _Seen(findings=[])
    ended = ""
    p = open_pool(workers, backend, ray_address) if pool is None else pool

    def limits() -> tuple[float, float, float]:
        v_budget = _budget_limit(streams, budget)
        v_found = INF
        if stop_on_first:
            keys = [k.key for s in streams for k in s.runs if k.run.findings]
            v_found = min(keys) + 1 if keys else INF
        v_end = INF
        if tree is not None and (tree.exhaustive or (tree.finished and strategy == "dfs")):
            v_end = tree.next_key()
        return v_budget, v_found, v_end

    try:
        interrupt = _Interrupt() if catch_interrupt else None
        while True:
            if interrupt is not None and interrupt.raised:
                ended = "interrupted"
                break
            if deadline is not None and time.time() >= deadline:
                ended = "time-limit"
                break
            v = min(limits())
            for h, (s, info) in list(flight.items()):
                if s.useless(info, v) and _cancel(p, h):
                    del flight[h]
                    s.dropped(info)
            cap = 2 * max(1, p.workers)
            while len(flight) < cap:
                ready = [s for s in streams if s.want(v)]
                if not ready:
                    break
                s = min(ready, key=lambda s: s.next_key())
                fn, arg, info = s.task(setup, deadline, v)
                flight[p.submit(fn, arg)] = (s, info)
            if not flight:
                for s in streams:
                    s.settle(v)
                if any(s.want(min(limits())) for s in streams):
                    continue
                break
            for h in p.wait(list(flight), 0.1):
                s, info = flight.pop(h)
                res = p.result(h)
                sites.update(res.sites)
                s.accept(info, res)
                seen.executions += len(res.runs)
                assert seen.findings is not None
                for run in res.runs:
                    seen.findings += [finding_key(f) for f in run.findings]
            v = min(limits())
            for s in streams:
                s.settle(v)
            if bar is not None:
                bar.update(_BarView(seen), time.monotonic() - start)  # type: ignore[arg-type]
        if ended:
            for h in list(flight):
                if _cancel(p, h):
                    del flight[h]
            for h in list(flight):  # started: each stops at the deadline or its budget
                s, info = flight.pop(h)
                s.accept(info, p.result(h))
    finally:
        if interrupt is not None:
            interrupt.restore()
        if own:
            p.close()
    v_budget, v_found, v_end = limits()
    v = min(v_budget, v_found, v_end)
    runs = sorted((k for s in streams for k in s.runs if k.key < v), key=lambda k: k.key)
    if keep_runs is not None:
        keep_runs += [k.run for k in runs]
    report = _merge(runs, program, monitors_factory, faults, max_faults, max_steps)
    if ended:
        report.stopped = ended
    elif v_found <= min(v_budget, v_end) and v_found < INF:
        report.stopped = "finding"
    elif v_budget <= v_end:
        report.stopped = "budget"
    else:
        report.stopped = "exhausted"
    report.exhausted = report.stopped == "exhausted"
    if tree is not None:
        report.exhaustive = report.exhausted and tree.exhaustive
        if strategy == "dfs":
            report.covered_bound = (
                preemption_bound if report.exhausted and not report.exhaustive else None
            )
        else:
            report.covered_bound = tree.covered(v)
    report.elapsed = time.monotonic() - start
    if bar is not None:
        bar.close(report)
    if faults is not None and hasattr(faults, "seen"):
        sites |= set(faults.seen)
    return report, frozenset(sites)


class _BarView:
    """What the progress bar reads of a report, from the runs seen so far."""

    def __init__(self, seen: _Seen) -> None:
        self.executions = seen.executions
        self.findings = list(dict.fromkeys(seen.findings or ()))


def _cancel(pool: Pool, handle: Any) -> bool:
    """Cancel ``handle`` if it has not started; whether it was."""
    return pool.cancel(handle)


def _merge(
    runs: list[_Keyed],
    program: Any,
    monitors_factory: Any,
    faults: Any,
    max_faults: int,
    max_steps: int,
) -> ExploreReport:
    """The report of ``runs`` (in key order), as :func:`~.explore.explore` builds it from
    executions in order."""
    import re

    report = ExploreReport()
    seen: set[tuple[str, str]] = set()
    notes_seen: set[str] = set()
    for k in runs:
        run = k.run
        report.executions += 1
        report.steps += run.steps
        report.pruned += run.pruned
        report.max_preemptions = max(report.max_preemptions, run.preemptions)
        for note in run.notes:
            masked = re.sub(r"-> [A-Z_]+", "->", _masked(note))
            if masked not in notes_seen:
                notes_seen.add(masked)
                report.notes.append(note)
        fresh = []
        for f in run.findings:
            if finding_key(f) not in seen:
                seen.add(finding_key(f))
                fresh.append(f)
        if fresh:
            found = _with_trace(
                program, fresh, run.result(), monitors_factory, faults, max_faults, max_steps
            )
            report.findings.extend(found)
            report.found_by.extend(k.part for _ in found)
    return report
