"""Exhaustive depth-first search, with source-set DPOR and sleep sets, and a preemption bound.

Design note
-----------
The search is stateless (Godefroid, VeriSoft): each execution re-runs the program from the
start, replays the decisions of a prefix of the previous one, then takes a new branch. The
current path is a stack of nodes, one per decision: *thread* nodes (which runnable thread takes
the next step) and *fault* nodes (which option at a fault site).

``reduction="dpor"`` (the default) is source-DPOR with sleep sets (Abdulla, Aronis, Jonsson,
Sagonas, "Optimal Dynamic Partial Order Reduction", POPL 2014, Algorithm 1; extended in JACM
2017 as "Source Sets: A Foundation for Optimal Dynamic Partial Order Reduction"), which refines
the persistent-set DPOR of Flanagan and Godefroid (POPL 2005). Two steps are *dependent* when
they name the same key and at least one writes (lock operations write their lock). After each
execution, happens-before is computed with vector clocks over its steps (program order plus
dependence); for every *race* (two dependent steps ``e < e'`` of different threads with no step
between them in happens-before) the initials of ``notdep(e).e'`` (the steps after ``e`` that do
not depend on it, then ``e'``) are computed, and unless one of them is already in the
backtrack set of the node before ``e``, one is added. Sleep sets prune the branches that
would only reorder independent steps already explored; an execution whose every runnable
thread sleeps is abandoned (its result has ``pruned`` set). Races are only analysed for steps
after the node where the execution left the previous one: earlier pairs were analysed then.

Where this departs from the papers:

- Blocking locks: a thread that finds a lock held takes a step (its failed attempt, a write of
  the lock) and is disabled until a release wakes it; its retry is a new step that the release
  happens-before. That pair is not a race (the retry cannot run before the release), so it is
  not reversed. Should an initial ever be disabled at the node where it must be added, the
  node conservatively gets every runnable thread (Flanagan & Godefroid's fallback).
- Faults are data choices (as shuttle's random values): every option of every fault node is
  explored below every thread choice; they do not take part in the race analysis.
- Preemption bound (CHESS's iterative context bounding, Musuvathi & Qadeer, PLDI 2007): a
  choice at a thread node that preempts a still-runnable thread counts one preemption, and no
  execution exceeds ``preemption_bound``. DPOR with a bound is not complete for the bounded
  executions (Coons, Musuvathi, McKinley, "Bounded Partial-Order Reduction", OOPSLA 2013); as
  they propose, a backtrack point the bound forbids is moved to the nearest earlier node where
  the thread may be scheduled within the bound. The guarantee under a bound is therefore "most
  bugs reachable within the bound", not all.

``reduction="none"`` explores every runnable thread at every node: plain DFS, for comparison.

The first branch at a new node is the current thread when it may continue (so the first
execution has no preemption at all), otherwise the first runnable thread in thread order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..schedule import FAULT, THREAD
from .base import BaseStrategy

if TYPE_CHECKING:
    from ..scheduler import Execution, ExecutionResult


class NondeterminismError(RuntimeError):
    """A re-executed prefix did not offer the same decision as before: the program depends on
    something the scheduler does not control (wall clock, hash order, global state)."""


class _Node:
    __slots__ = (
        "backtrack",
        "chosen",
        "current",
        "done",
        "kind",
        "n",
        "preemptions",
        "runnable",
        "site",
        "sleep",
        "step",
    )

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.runnable: tuple[str, ...] = ()
        self.current: str | None = None
        self.chosen: str | int = 0
        self.backtrack: list[str] = []  # in the order added; a subset of runnable
        self.done: list[str] = []  # explored already (all of them are in backtrack)
        self.sleep: frozenset[str] = frozenset()  # sleep set on entry
        self.preemptions = 0  # preemptions of the execution before this decision
        self.step = -1  # index of the step this thread decision lets run
        self.n = 0  # fault node: number of options
        self.site = ""

    def allows(self, t: str, bound: int | None) -> bool:
        """Whether choosing ``t`` here stays within the preemption bound."""
        if bound is None or self.current is None or t == self.current:
            return True
        if self.current not in self.runnable:
            return True
        return self.preemptions < bound


class DFSStrategy(BaseStrategy):
    """Exhaustive depth-first exploration.

    ``reduction``: ``"dpor"`` (source sets + sleep sets) or ``"none"`` (every interleaving).
    ``preemption_bound``: at most that many preemptions per execution (``None``: unbounded).
    """

    name = "dfs"

    def __init__(self, reduction: str = "dpor", preemption_bound: int | None = None) -> None:
        if reduction not in ("dpor", "none"):
            raise ValueError(f"unknown reduction {reduction!r}: expected 'dpor' or 'none'")
        if preemption_bound is not None and preemption_bound < 0:
            raise ValueError("the preemption bound must be >= 0")
        self.reduction = reduction
        self.dpor = reduction == "dpor"
        self.bound = preemption_bound
        self.stack: list[_Node] = []
        self.depth = 0
        self.started = False
        self.executions = 0
        self.pruned = 0
        self._replay_until = 0  # nodes below this index are replayed
        self._first_new_step = 0  # steps from here on are new in this execution
        self._sleep: set[str] = set()
        self._seen = 0  # steps already folded into the sleep set

    # -- the protocol ----------------------------------------------------------------------------
    def new_execution(self) -> bool:
        if not self.started:
            self.started = True
        elif not self._backtrack():
            return False
        self.depth = 0
        self._replay_until = len(self.stack)
        self._sleep = set()
        self._seen = 0
        self._first_new_step = 0
        return True

    def begin(self, execution: Execution) -> None:
        self.execution = execution

    def next_thread(self, runnable: Sequence[str], current: str | None) -> str | None:
        ex = self.execution
        assert ex is not None
        runnable = tuple(runnable)
        d = self.depth
        self.depth += 1
        if d < self._replay_until:
            node = self.stack[d]
            if node.kind != THREAD or node.runnable != runnable:
                raise NondeterminismError(
                    f"decision {d}: expected a choice of {node.runnable or node.site}, "
                    f"the re-execution offers {runnable}"
                )
            if d == self._replay_until - 1:
                # The node we backtracked to: continue below it with a fresh sleep set.
                self._first_new_step = node.step
                self._sleep = set(node.sleep) | set(node.done)
                self._sleep.discard(str(node.chosen))
                self._seen = len(ex.events)
            return str(node.chosen)

        node = _Node(THREAD)
        node.runnable = runnable
        node.current = current
        node.preemptions = ex.preemptions
        node.step = len(ex.events)
        if self.dpor:
            self._fold_sleep(ex)
            node.sleep = frozenset(self._sleep)
        choice = self._first_choice(node)
        if choice is None:
            self.pruned += 1
            return None
        node.chosen = choice
        if self.dpor:
            node.backtrack = [choice]
        else:
            node.backtrack = [t for t in runnable if node.allows(t, self.bound)]
        self.stack.append(node)
        self._replay_until = len(self.stack)  # nothing below to replay any more
        return choice

    def next_choice(self, kind: str, site: str, n: int) -> int:
        d = self.depth
        self.depth += 1
        if d < self._replay_until:
            node = self.stack[d]
            if node.kind != FAULT or node.site != site or node.n != n:
                raise NondeterminismError(
                    f"decision {d}: expected {node.kind} at {node.site or node.runnable}, "
                    f"the re-execution offers {kind} at {site} with {n} options"
                )
            if d == self._replay_until - 1:
                self._first_new_step = len(self.execution.events) if self.execution else 0
                self._sleep = set(node.sleep)
                self._seen = len(self.execution.events) if self.execution else 0
            return int(node.chosen)
        node = _Node(FAULT)
        node.site = site
        node.n = n
        node.chosen = 0
        if self.dpor and self.execution is not None:
            self._fold_sleep(self.execution)
            node.sleep = frozenset(self._sleep)
        self.stack.append(node)
        self._replay_until = len(self.stack)
        return 0

    def end_execution(self, result: ExecutionResult) -> None:
        self.executions += 1
        # Nodes past the last decision of this execution (an abandoned branch) are dropped.
        del self.stack[self.depth :]
        if self.dpor:
            # A pruned (sleep-set-blocked) execution is analysed too: its races are real.
            self._analyse_races(result)

    # -- search ----------------------------------------------------------------------------------
    def _first_choice(self, node: _Node) -> str | None:
        bound = self.bound
        cur = node.current
        if cur is not None and cur in node.runnable and cur not in node.sleep:
            return cur
        for t in node.runnable:
            if t not in node.sleep and node.allows(t, bound):
                return t
        return None

    def _backtrack(self) -> bool:
        """Move to the deepest node with an unexplored branch; ``False`` when none is left."""
        stack = self.stack
        while stack:
            node = stack[-1]
            if node.kind == FAULT:
                if int(node.chosen) + 1 < node.n:
                    node.chosen = int(node.chosen) + 1
                    return True
            else:
                node.done.append(str(node.chosen))
                for t in node.backtrack:
                    if t not in node.done and t not in node.sleep:
                        node.chosen = t
                        return True
            stack.pop()
        return False

    def _fold_sleep(self, ex: Execution) -> None:
        """Wake the sleeping threads whose pending step conflicts with a step run since."""
        events = ex.events
        sleep = self._sleep
        if sleep:
            pending = ex.pending
            for s in range(self._seen, len(events)):
                t, kind, key, write = events[s]
                sleep.discard(t)
                for q in list(sleep):
                    op = pending.get(q)
                    if op is None or (op[1] == key and op[0] == kind and (write or op[2])):
                        sleep.discard(q)
                if not sleep:
                    break
        self._seen = len(events)

    # -- race analysis -----------------------------------------------------------------------------
    def _analyse_races(self, result: ExecutionResult) -> None:
        events = result.events
        if not events:
            return
        wake = result.wake_edges
        index = {t: i for i, t in enumerate(result.threads)}
        nthreads = len(index)
        nodes = {n.step: n for n in self.stack if n.kind == THREAD}
        clocks: list[list[int]] = [[0] * nthreads for _ in range(nthreads)]
        vcs: list[list[int]] = []
        tid: list[int] = []
        last_write: dict[tuple[str, object], int] = {}
        reads: dict[tuple[str, object], list[int]] = {}
        last_of_thread: list[int] = [-1] * nthreads
        start = self._first_new_step
        for j, (t, kind, key, write) in enumerate(events):
            ti = index[t]
            k = (kind, key)
            lw = last_write.get(k)
            preds: list[int] = []
            if lw is not None:
                preds.append(lw)
            if write:
                preds.extend(reads.get(k, ()))
            vc = list(clocks[ti])
            vc[ti] += 1
            for p in preds:
                pv = vcs[p]
                for x in range(nthreads):
                    if pv[x] > vc[x]:
                        vc[x] = pv[x]
            vcs.append(vc)
            tid.append(ti)
            if j >= start:
                po = last_of_thread[ti]
                for i in preds:
                    ii = tid[i]
                    if ii == ti or wake.get(j) == i:
                        continue
                    li = vcs[i][ii]
                    others = [p for p in preds if p != i]
                    if po >= 0:
                        others.append(po)
                    if any(vcs[o][ii] >= li for o in others):
                        continue  # i reaches j through another step: not an immediate race
                    node = nodes.get(i)
                    if node is not None:
                        self._reverse(i, j, node, events, vcs, tid, result.threads)
            clocks[ti] = vc
            last_of_thread[ti] = j
            if write:
                last_write[k] = j
                reads[k] = []
            else:
                reads.setdefault(k, []).append(j)

    def _reverse(
        self,
        i: int,
        j: int,
        node: _Node,
        events: list[tuple[str, str, object, bool]],
        vcs: list[list[int]],
        tid: list[int],
        threads: tuple[str, ...],
    ) -> None:
        """Make sure the node before step ``i`` will explore running ``j``'s side first."""
        if len(node.backtrack) >= len(node.runnable):
            return
        ii = tid[i]
        li = vcs[i][ii]
        # Initials of notdep(i).j: first steps of their thread in v with no step of v before
        # them in happens-before (a step of v before them would be the first of its thread).
        first_of: dict[int, int] = {}
        initials: list[str] = []
        v: list[int] = []
        for k in range(i + 1, j):
            if vcs[k][ii] >= li:
                continue  # happens after i: not in notdep(i)
            v.append(k)
            tk = tid[k]
            if tk in first_of:
                continue
            vk = vcs[k]
            if not any(vk[t2] >= vcs[f][t2] for t2, f in first_of.items()):
                initials.append(threads[tk])
            first_of[tk] = k
        # j's clock also counts paths through steps after i, which v leaves out: check its
        # direct predecessors in v instead (an earlier step of its thread, a conflicting step).
        if tid[j] not in first_of:
            _, kind, key, write = events[j]
            if not any(
                events[k][2] == key and events[k][1] == kind and (write or events[k][3]) for k in v
            ):
                initials.append(threads[tid[j]])
        if any(q in node.backtrack for q in initials):
            return
        bound = self.bound
        tj = threads[tid[j]]
        candidates = [q for q in initials if q in node.runnable and q not in node.sleep]
        candidates.sort(key=lambda q: q != tj)  # prefer the racing thread itself
        for q in candidates:
            if node.allows(q, bound):
                node.backtrack.append(q)
                return
        if candidates:
            self._add_earlier(node, candidates[0])
            return
        if any(q in node.sleep for q in initials):
            return  # explored from an earlier sibling
        for q in node.runnable:  # conservative fallback: an initial was not enabled here
            if q not in node.backtrack and node.allows(q, bound):
                node.backtrack.append(q)

    def _add_earlier(self, node: _Node, q: str) -> None:
        """The bound forbids ``q`` at ``node``: add it at the nearest earlier node allowing it
        (Coons et al.'s conservative bounded backtracking)."""
        pos = self.stack.index(node)
        for k in range(pos - 1, -1, -1):
            n = self.stack[k]
            if n.kind != THREAD or q not in n.runnable:
                continue
            if q in n.backtrack:
                return
            if n.allows(q, self.bound) and q not in n.sleep:
                n.backtrack.append(q)
                return
