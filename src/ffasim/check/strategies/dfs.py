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
the persistent-set DPOR of Flanagan and Godefroid (POPL 2005). A step's *footprint* is every
access it makes: its scheduling point and the accesses it declared (``Execution.access``:
state changed or read inside a step, such as the heap, a frame's grants or what a monitor
judges by). Two steps are *dependent* when two of their accesses name the same state and one
writes. After each execution, happens-before is computed with vector clocks over its steps
(program order plus dependence); for every *race* (two dependent steps ``e < e'`` of different
threads with no step between them in happens-before) the initials of ``notdep(e).e'`` (the
steps after ``e`` that do not depend on it, then ``e'``) are computed, and unless one of them
is already in the backtrack set of the node before ``e`` (or sleeps there: an earlier sibling
covered it), one is added. Sleep sets prune the branches that would only reorder independent
steps already explored: a thread sleeps, with the footprint of the step it took in the sibling
branch, until a step dependent on that footprint runs. An execution whose every runnable
thread sleeps is abandoned (its result has ``pruned`` set).

Where this departs from the papers:

- Blocking locks: a thread that finds a lock held takes a step (its failed attempt, a write of
  the lock) and is disabled until a release wakes it; its retry is a new step that the release
  happens-before (the release declares the lock). That pair is not a race (the retry cannot run
  before the release), so it is not reversed. Should an initial ever be disabled at the node
  where it must be added, the node conservatively gets every runnable thread (Flanagan &
  Godefroid's fallback).
- Executions that end early: a finding stops an execution, and a paused domain's vCPUs are
  descheduled, so some threads never take the step they were ready for. The papers explore
  maximal executions only; here each such step is a *virtual* event at the position where it
  was ready, dependent on every step (its footprint is unknown), and its races are reversed like
  real ones. Without this an execution that stops on a panic would hide every interleaving in
  which another thread's pending step comes first and the panic does not happen.
- Faults are data choices (as shuttle's random values): every option of every fault node is
  explored below every thread choice; they do not take part in the race analysis.
- Preemption bound (CHESS's iterative context bounding, Musuvathi & Qadeer, PLDI 2007): a
  choice at a thread node that preempts a still-runnable thread counts one preemption, and no
  execution exceeds ``preemption_bound``. Plain DPOR under a bound is not complete for the
  bounded executions (Coons, Musuvathi, McKinley, "Bounded Partial-Order Reduction", OOPSLA
  2013). As they (and dejafu) do, every backtrack point is also added *conservatively* at the
  last context switch before it: switching to the racing thread there instead costs no more
  preemptions than the switch the execution made. Sleep sets are not used under a bound: a
  sleeping thread's sibling branch may have been cut by the bound, so it covers nothing.

``reduction="none"`` explores every runnable thread at every node: the naive enumeration of
every schedule (within the bound), which the tests use as the reference DPOR must agree with.

The first branch at a new node is the current thread when it may continue (so the first
execution has no preemption at all), otherwise the first runnable thread in thread order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..schedule import FAULT, THREAD
from .base import BaseStrategy

if TYPE_CHECKING:
    from ..scheduler import Execution, ExecutionResult, Op


def conflict(a: tuple[Op, ...] | None, b: tuple[Op, ...] | None) -> bool:
    """Whether two steps with footprints ``a`` and ``b`` are dependent (``None``: a step whose
    accesses are unknown, a virtual event, is dependent on everything)."""
    if a is None or b is None:
        return True
    for kind, key, write in a:
        for kind2, key2, write2 in b:
            if (write or write2) and key == key2 and kind == kind2:
                return True
    return False


def stable(fp: tuple[Op, ...]) -> tuple[Op, ...] | None:
    """``fp`` with keys that mean the same in every execution (sleep sets compare steps of
    different executions, whose locks and atomics are different objects): an object key by its
    type and name; ``None`` (dependent on everything) when a key has no stable name. Two objects
    of the same type and name are taken for one: that only wakes a sleeping thread early."""
    out = []
    for kind, key, write in fp:
        if not isinstance(key, (int, str, tuple)):
            name = getattr(key, "name", None)
            if not isinstance(name, str):
                return None
            key = (type(key).__name__, name)
        out.append((kind, key, write))
    return tuple(out)


def _union(a: tuple[Op, ...], b: tuple[Op, ...]) -> tuple[Op, ...]:
    return a + tuple(op for op in b if op not in a)


class NondeterminismError(RuntimeError):
    """A re-executed prefix did not offer the same decision as before: the program depends on
    something the scheduler does not control (wall clock, hash order, global state)."""


class _Node:
    __slots__ = (
        "backtrack",
        "chosen",
        "current",
        "depth",
        "done",
        "fp",
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
        self.sleep: dict[str, tuple[Op, ...] | None] = {}  # sleep set on entry
        self.fp: dict[str, tuple[Op, ...] | None] = {}  # footprint of each explored branch
        self.preemptions = 0  # preemptions of the execution before this decision
        self.step = -1  # index of the step this thread decision lets run
        self.n = 0  # fault node: number of options
        self.site = ""
        self.depth = 0  # index in the stack

    def clone(self) -> _Node:
        """A copy whose lists and dicts are its own (a shard's prefix is edited apart)."""
        c = _Node(self.kind)
        for name in _Node.__slots__:
            setattr(c, name, getattr(self, name))
        c.backtrack = list(self.backtrack)
        c.done = list(self.done)
        c.sleep = dict(self.sleep)
        c.fp = dict(self.fp)
        return c

    def allows(self, t: str, bound: int | None) -> bool:
        """Whether choosing ``t`` here stays within the preemption bound."""
        if bound is None or self.current is None or t == self.current:
            return True
        if self.current not in self.runnable:
            return True
        return self.preemptions < bound

    @property
    def switches(self) -> bool:
        """Whether the chosen thread is not the one that was running (a context switch)."""
        return self.kind == THREAD and self.chosen != self.current


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
        self.sleep_sets = self.dpor and preemption_bound is None
        self.stack: list[_Node] = []
        self.depth = 0
        self.started = False
        self.executions = 0
        self.pruned = 0
        self.fallbacks = 0
        """How often an initial was disabled where it had to be added (see the design note)."""
        self.bound_hit = False
        """Whether the preemption bound ever ruled out a choice. An exploration that ends
        without it covered every schedule, not only the bounded ones."""
        self._replay_until = 0  # nodes below this index are replayed
        self._first_new_step = 0  # steps from here on are new in this execution
        self._sleep: dict[str, tuple[Op, ...] | None] = {}
        self._seen = 0  # steps already folded into the sleep set
        # Sharding (check/parallel.py): the nodes below ``floor`` are another shard's; this
        # one never backtracks into them, and what its races add to them is a request.
        self.floor = 0
        self.requests: list[tuple[int, str]] = []
        """``(depth, thread)``: branches the race analysis added below ``floor``."""
        self.claims: list[tuple[tuple[str | int, ...], tuple[str, ...]]] | None = None
        """When a list: ``(path, backtrack)`` of each finished node with more than one branch
        (``path``: the choices above it), so that a coordinator knows what was explored."""

    # -- the protocol ----------------------------------------------------------------------------
    def new_execution(self) -> bool:
        if not self.started:
            self.started = True
        elif not self._backtrack():
            return False
        self.depth = 0
        self._replay_until = len(self.stack)
        self._sleep = {}
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
                if self.sleep_sets:
                    self._sleep = dict(node.sleep)
                    for t in node.done:
                        self._sleep[t] = node.fp.get(t)
                    self._sleep.pop(str(node.chosen), None)
                self._seen = len(ex.events)
            return str(node.chosen)

        node = _Node(THREAD)
        node.runnable = runnable
        node.current = current
        node.preemptions = ex.preemptions
        node.step = len(ex.events)
        if self.sleep_sets:
            self._fold_sleep(ex, len(ex.events))
            node.sleep = dict(self._sleep)
        choice = self._first_choice(node)
        if choice is None:
            self.pruned += 1
            return None
        node.chosen = choice
        if self.dpor:
            node.backtrack = [choice]
        else:
            node.backtrack = [t for t in runnable if self._allows(node, t)]
        node.depth = len(self.stack)
        self.stack.append(node)
        self._replay_until = len(self.stack)  # nothing below to replay any more
        return choice

    def next_choice(self, kind: str, site: str, n: int) -> int:
        ex = self.execution
        # A fault decision is taken inside a step (the SMC or allocation it guards), which is
        # not complete yet: it is folded and analysed with what follows.
        open_step = max(0, len(ex.events) - 1) if ex is not None else 0
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
                self._first_new_step = open_step
                if self.sleep_sets:
                    self._sleep = dict(node.sleep)
                self._seen = open_step
            return int(node.chosen)
        node = _Node(FAULT)
        node.site = site
        node.n = n
        node.chosen = 0
        if self.sleep_sets and ex is not None:
            self._fold_sleep(ex, open_step)
            node.sleep = dict(self._sleep)
        node.depth = len(self.stack)
        self.stack.append(node)
        self._replay_until = len(self.stack)
        return 0

    def end_execution(self, result: ExecutionResult) -> None:
        self.executions += 1
        # Nodes past the last decision of this execution (an abandoned branch) are dropped.
        del self.stack[self.depth :]
        if self.dpor:
            n = len(result.events)
            for node in self.stack:
                if node.kind == THREAD and node.step < n:
                    # A step may hold fault decisions, explored below this node one option
                    # after the other: its footprint for the sleep set covers them all.
                    t = str(node.chosen)
                    fp = stable(result.footprint(node.step))
                    old = node.fp.get(t, ())
                    node.fp[t] = None if fp is None or old is None else _union(old, fp)
            # A pruned (sleep-set-blocked) execution is analysed too: its races are real.
            self._analyse_races(result)

    @property
    def exhaustive(self) -> bool:
        """Whether the exploration ended having covered every schedule (the bound, if any,
        never mattered)."""
        return self.started and not self.stack and not self.bound_hit

    # -- sharding (check/parallel.py) -------------------------------------------------------------
    @classmethod
    def resume(
        cls,
        prefix: list[_Node],
        floor: int,
        reduction: str = "dpor",
        preemption_bound: int | None = None,
    ) -> DFSStrategy:
        """A search that goes on from ``prefix`` (a stack :meth:`split` returned): it
        backtracks from the last node up to node ``floor``, never above; its races' additions
        above ``floor`` are :attr:`requests`."""
        s = cls(reduction, preemption_bound)
        s.stack = prefix
        s.floor = floor
        s.started = True
        s.claims = []
        return s

    def pending(self, node: _Node) -> bool:
        """Whether ``node`` has a branch left besides the one it is on."""
        if node.kind == FAULT:
            return int(node.chosen) + 1 < node.n
        return any(
            t not in node.done and t != node.chosen and t not in node.sleep for t in node.backtrack
        )

    def split(self, parts: int) -> list[tuple[list[_Node], int]]:
        """What is left below the floor, as at most ``parts`` stacks ``(nodes, floor)`` for
        :meth:`resume`, shallowest first: each of the shallowest nodes with a branch left on
        its own (they root the largest subtrees), the deeper ones together, each copied. A
        node whose step holds fault decisions still being explored lends its
        sleeping sibling no footprint (``None``: it wakes at once), since the footprint is
        not complete yet."""
        stack = self.stack
        todo = [y for y in range(self.floor, len(stack)) if self.pending(stack[y])]
        if not todo:
            return []
        groups = [[y] for y in todo[: parts - 1]]
        if todo[parts - 1 :]:
            groups.append(todo[parts - 1 :])
        out = []
        for group in groups:
            lo, hi = group[0], group[-1]
            nodes = [_frozen(n) for n in stack[:lo]]
            for y in range(lo, hi + 1):
                n = stack[y].clone()
                if n.kind == THREAD and y + 1 < len(stack) and stack[y + 1].kind == FAULT:
                    n.fp[str(n.chosen)] = None
                nodes.append(n)
            out.append((nodes, lo))
        return out

    # -- search ----------------------------------------------------------------------------------
    def _allows(self, node: _Node, t: str) -> bool:
        if node.allows(t, self.bound):
            return True
        self.bound_hit = True
        return False

    def _first_choice(self, node: _Node) -> str | None:
        cur = node.current
        if cur is not None and cur in node.runnable and cur not in node.sleep:
            return cur
        for t in node.runnable:
            if t not in node.sleep and self._allows(node, t):
                return t
        return None

    def _backtrack(self) -> bool:
        """Move to the deepest node with an unexplored branch; ``False`` when none is left."""
        stack = self.stack
        while len(stack) > self.floor:
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
                if self.claims is not None and len(node.backtrack) > 1:
                    path = tuple(n.chosen for n in stack[:-1])
                    self.claims.append((path, tuple(node.backtrack)))
            stack.pop()
        return False

    def _fold_sleep(self, ex: Execution, upto: int) -> None:
        """Wake the sleeping threads whose step conflicts with a step run since, up to step
        ``upto`` (excluded)."""
        sleep = self._sleep
        if sleep:
            events = ex.events
            extra = ex.extra
            for s in range(self._seen, upto):
                t, kind, key, write = events[s]
                sleep.pop(t, None)
                more = extra.get(s)
                fp = stable(((kind, key, write), *more) if more else ((kind, key, write),))
                for q in [q for q, fq in sleep.items() if conflict(fp, fq)]:
                    del sleep[q]
                if not sleep:
                    break
        self._seen = max(self._seen, upto)

    # -- race analysis -----------------------------------------------------------------------------
    def _analyse_races(self, result: ExecutionResult) -> None:
        events = result.events
        n = len(events)
        if not n:
            return
        threads = result.threads
        index = {t: i for i, t in enumerate(threads)}
        nthreads = len(index)
        nodes = {node.step: node for node in self.stack if node.kind == THREAD}
        fps: list[tuple[Op, ...] | None] = [result.footprint(i) for i in range(n)]
        tid = [index[e[0]] for e in events]
        wake = result.wake_edges
        clocks: list[list[int]] = [[0] * nthreads for _ in range(nthreads)]
        vcs: list[list[int]] = []
        last_write: dict[tuple[str, object], int] = {}
        reads: dict[tuple[str, object], list[int]] = {}
        last_of_thread: list[int] = [-1] * nthreads
        start = self._first_new_step
        for j in range(n):
            ti = tid[j]
            fp = fps[j]
            assert fp is not None
            preds: set[int] = set()
            for kind, key, write in fp:
                k = (kind, key)
                lw = last_write.get(k)
                if lw is not None:
                    preds.add(lw)
                if write:
                    preds.update(reads.get(k, ()))
            preds.discard(j)
            vc = list(clocks[ti])
            vc[ti] += 1
            for p in preds:
                pv = vcs[p]
                for x in range(nthreads):
                    if pv[x] > vc[x]:
                        vc[x] = pv[x]
            vcs.append(vc)
            if j >= start:
                po = last_of_thread[ti]
                for i in sorted(preds):
                    if tid[i] == ti or wake.get(j) == i:
                        continue
                    if self._immediate(i, preds, po, vcs, tid):
                        node = nodes.get(i)
                        if node is not None:
                            self._reverse(i, j, fp, ti, node, fps, vcs, tid, threads)
            clocks[ti] = vc
            last_of_thread[ti] = j
            for kind, key, write in fp:
                k = (kind, key)
                if write:
                    last_write[k] = j
                    reads[k] = []
                else:
                    reads.setdefault(k, []).append(j)
        for thread, pos, woken_by in result.virtual:
            self._analyse_virtual(
                index[thread], min(pos, n), woken_by, nodes, fps, vcs, tid, threads
            )

    @staticmethod
    def _immediate(
        i: int, preds: set[int] | list[int], po: int, vcs: list[list[int]], tid: list[int]
    ) -> bool:
        """Whether ``i`` (one of a step's direct predecessors ``preds``, its thread's previous
        step being ``po``) reaches that step only directly, not through another of them."""
        ii = tid[i]
        li = vcs[i][ii]
        for o in preds:
            if o != i and vcs[o][ii] >= li:
                return False
        return not (po >= 0 and po != i and vcs[po][ii] >= li)

    def _analyse_virtual(
        self,
        ti: int,
        pos: int,
        woken_by: int,
        nodes: dict[int, _Node],
        fps: list[tuple[Op, ...] | None],
        vcs: list[list[int]],
        tid: list[int],
        threads: tuple[str, ...],
    ) -> None:
        """Races of thread ``ti``'s step that was ready after the first ``pos`` steps and never
        ran: it depends on everything, so its direct predecessors are the last step of every
        thread before ``pos``. The release that woke it (``woken_by``) is no race: the retry
        cannot come before it."""
        last: dict[int, int] = {}
        for k in range(pos - 1, -1, -1):
            if tid[k] not in last:
                last[tid[k]] = k
                if len(last) == len(threads):
                    break
        po = last.pop(ti, -1)
        preds = list(last.values())
        for i in sorted(preds):
            if i != woken_by and self._immediate(i, preds, po, vcs, tid):
                node = nodes.get(i)
                if node is not None:
                    self._reverse(i, pos, None, ti, node, fps, vcs, tid, threads)

    def _reverse(
        self,
        i: int,
        j: int,
        fp_j: tuple[Op, ...] | None,
        tj: int,
        node: _Node,
        fps: list[tuple[Op, ...] | None],
        vcs: list[list[int]],
        tid: list[int],
        threads: tuple[str, ...],
    ) -> None:
        """Make sure the node before step ``i`` will explore running the racing step's side
        first. The racing step is step ``j`` (or, virtual, thread ``tj``'s step that was ready
        at position ``j``), with footprint ``fp_j``."""
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
        if tj not in first_of and not any(conflict(fps[k], fp_j) for k in v):
            initials.append(threads[tj])
        if any(q in node.backtrack for q in initials):
            return
        enabled = [q for q in initials if q in node.runnable]
        if any(q in node.sleep for q in enabled):
            return  # explored from an earlier sibling
        bound = self.bound
        if not enabled:
            # Conservative fallback: an initial was not enabled here.
            self.fallbacks += 1
            for q in node.runnable:
                if q not in node.backtrack and self._allows(node, q):
                    self._add(node, q)
            return
        racing = threads[tj]
        enabled.sort(key=lambda q: q != racing)  # prefer the racing thread itself
        if bound is None:
            self._add(node, enabled[0])
            return
        allowed = [q for q in enabled if self._allows(node, q)]
        if allowed:
            self._add(node, allowed[0])
        self._add_conservatively(node, allowed[0] if allowed else enabled[0])

    def _add_conservatively(self, node: _Node, q: str) -> None:
        """Under a preemption bound, also schedule ``q`` at the last context switch at or
        before ``node`` where it could run (Coons et al.'s conservative backtracking): it
        replaces a switch the execution made, so it costs no extra preemption."""
        pos = self.stack.index(node)
        for k in range(pos, -1, -1):
            n = self.stack[k]
            if n.kind != THREAD or not n.switches or q not in n.runnable:
                continue
            if q not in n.backtrack and self._allows(n, q):
                self._add(n, q)
            return

    def _add(self, node: _Node, q: str) -> None:
        """Add ``q`` to ``node``'s backtrack set; below the floor, also as a request."""
        node.backtrack.append(q)
        if node.depth < self.floor:
            self.requests.append((node.depth, q))


def _frozen(node: _Node) -> _Node:
    """A copy of ``node`` for a shard that will not backtrack to it (the race analysis reads
    it, and a request for a new branch there starts from it)."""
    return node.clone()
