"""lock-order: two lock classes taken in both orders (Linux's lockdep), deadlock or not.

A deadlock needs the unlucky interleaving; an inverted acquisition order is visible in any run
that takes both orders, even one vCPU at a time. The monitor records, for every blocking
acquisition, an edge from each lock the context already holds to the new one, between lock
*classes*: a lock's name with its domain, VM and vCPU parts abstracted (``d1.ffa.rx_lock`` and
``d2.ffa.rx_lock`` are one class, ``d*.ffa.rx_lock``). An edge whose reverse (or a longer
cycle) was ever recorded is a finding that names both orders with their call sites. Two locks
of one class (two domains' ``lock``, Hafnium's ``vm_lock_both_in_order``) are judged by name
instead: what must not happen is one pair taken both ways.

The edges live in a :class:`LockOrderGraph` that the monitors of one exploration share
(:func:`~ffasim.check.monitors.monitor_set`), so an order seen in one execution is held against
the executions after it: exploring a branch that takes A then B, then one that takes B then A,
is enough.

Rules that keep it from crying wolf:

- a trylock never waits, so it adds no edge *to* the lock it takes (it still adds edges from
  that lock to the ones taken under it);
- an rwlock taken for read by both sides of an inversion does not block either side, as the
  model's rwlock lets readers in beside readers (Xen's fair rwlock also queues a reader behind a
  waiting writer: that three-party deadlock is not reported);
- Hafnium v2.14's own departures from its order (``ffasim.spmc.vm.LOCK_ORDER_EXCEPTIONS``: the
  SPMC mirrors them on purpose) are accepted silently;
- a lock still held when its context returns to its guest was leaked (``lock-leak``): the
  orders taken under it afterwards are not recorded.

Findings are reported when the execution finishes (not when it stopped on another finding):
an inverted order does not cut short the execution that may show its deadlock.

It cannot see orders through code paths that no execution ran, nor waits other than locks
(an SMC blocked on a busy partition, a spin on an atomic).
"""

from __future__ import annotations

import functools
import itertools
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from ... import abi
from ...machine.events import EventSink
from ...machine.locks import RwLock, Spinlock
from ...spmc.vm import LOCK_ORDER_EXCEPTIONS
from ._base import CallTracking

_INSTANCE = (
    (re.compile(r"(?<![0-9A-Za-z_])d\d+(?=[.v]|\Z)"), "d*"),  # a domain: d1, d1v0
    (re.compile(r"(?<=[0-9*])v\d+(?=\.|\Z)"), "v*"),  # a domain's vCPU: d1v0
    (re.compile(r"(?<![0-9A-Za-z_])vm[0-9a-f]+(?=\.)"), "vm*"),  # an SPMC endpoint: vm8001
    (re.compile(r"(?<![0-9A-Za-z_])vcpu\d+(?=\.|\Z)"), "vcpu*"),  # its vCPU: vcpu0
)


@functools.cache
def lock_class(name: str) -> str:
    """``d1.ffa.rx_lock`` -> ``d*.ffa.rx_lock``; ``spmc.vm8001.vcpu0.lock`` ->
    ``spmc.vm*.vcpu*.lock``: the lock's name without the instance it belongs to."""
    for pattern, repl in _INSTANCE:
        name = pattern.sub(repl, name)
    return name


# Frames that are lock plumbing, not call sites: the machine's primitives, the checker (and any
# other event sink), and the SPMC's lock helpers (Hafnium's vm_lock & co: their caller is the
# site).
_ROOT = Path(__file__).resolve().parents[2]
_PLUMBING = (str(_ROOT / "machine"), str(_ROOT / "check"), str(_ROOT / "spmc" / "vm.py"))

_plumbing: dict[object, bool] = {}
"""Per code object: whether its frames are plumbing (by file, or a method of an event sink
fanning events out: the same code always belongs to the same kind of object)."""


def _is_plumbing(f: FrameType) -> bool:
    code = f.f_code
    known = _plumbing.get(code)
    if known is None:
        known = code.co_filename.startswith(_PLUMBING) or isinstance(
            f.f_locals.get("self"), EventSink
        )
        _plumbing[code] = known
    return known


@dataclass(frozen=True)
class Sighting:
    """One acquisition of ``taken`` while ``held`` was held."""

    held: str  # the held lock's name
    held_site: str
    taken: str
    taken_site: str
    ctx: str
    call: str  # the guest's hypercall under way ("d0v0 FFA_MSG_SEND2"), or ""
    smc: str  # the innermost SMC under way ("FFA_RXTX_MAP_64"), or ""
    held_read: bool
    taken_read: bool

    def describe(self) -> str:
        """``d0.ffa.tx_lock (ffa_msg.py:120 ffa_handle_msg_send2) then spmc.tx_lock
        (ffa_rxtx.py:88 ffa_tx_acquire) by d0v0 in FFA_MSG_SEND2``."""
        rd = " [read]"
        where = f" in {self.call.split(' ', 1)[1]}" if self.call else ""
        return (
            f"{self.held}{rd if self.held_read else ''} ({self.held_site}) then "
            f"{self.taken}{rd if self.taken_read else ''} ({self.taken_site}) by "
            f"{self.ctx}{where}"
        )


@dataclass
class LockOrderGraph:
    """Acquisition-order edges between lock classes, kept across the executions of one
    exploration. An edge ``(A, B)`` means B was taken (waiting) while A was held."""

    edges: dict[tuple[str, str], list[Sighting]] = field(default_factory=dict)
    """Per edge, its first sighting per (held read, taken read) pair of modes."""
    succ: dict[str, set[str]] = field(default_factory=dict)
    inversions: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    """Edge -> (kind, message) of the inversion it belongs to, reported again whenever an
    execution takes that edge (a replay of the finding's schedule must see it too)."""

    def add(self, a: str, b: str, s: Sighting) -> bool:
        """Record ``s`` on edge ``(a, b)``; whether the edge or this pair of modes is new."""
        seen = self.edges.get((a, b))
        if seen is None:
            self.edges[(a, b)] = [s]
            self.succ.setdefault(a, set()).add(b)
            return True
        if any((x.held_read, x.taken_read) == (s.held_read, s.taken_read) for x in seen):
            return False
        seen.append(s)
        return True

    def path(self, src: str, dst: str) -> list[str] | None:
        """The shortest chain of exclusive edges from ``src`` to ``dst`` (nodes, both ends
        included), or ``None``."""
        prev: dict[str, str] = {src: src}
        todo = [src]
        while todo:
            nxt: list[str] = []
            for n in todo:
                for m in sorted(self.succ.get(n, ())):
                    if m in prev or not self.exclusive(n, m):
                        continue
                    prev[m] = n
                    if m == dst:
                        out = [m]
                        while out[-1] != src:
                            out.append(prev[out[-1]])
                        return out[::-1]
                    nxt.append(m)
            todo = nxt
        return None

    def exclusive(self, a: str, b: str) -> bool:
        """Whether some sighting of edge ``(a, b)`` holds and takes without read locks."""
        return any(not s.held_read and not s.taken_read for s in self.edges.get((a, b), ()))


def _blocks(holder_read: bool, waiter_read: bool) -> bool:
    return not (holder_read and waiter_read)


class LockOrderMonitor(CallTracking):
    """Reports each acquisition that closes a cycle in the lock-order graph, at the end of the
    execution: an order is a fact about the code, not about this execution's state, so it
    does not stop the execution before its own failures (a deadlock, a data abort) show."""

    def __init__(self, graph: LockOrderGraph | None = None) -> None:
        super().__init__()
        self.graph = graph if graph is not None else LockOrderGraph()
        # ctx -> held (lock, node, site, read), in acquisition order
        self.held: dict[str, list[tuple[object, str, str, bool]]] = {}
        self.smc_calls: dict[str, list[str]] = {}
        self.said: set[tuple[str, str]] = set()
        self.pending: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = []
        self._sites: dict[tuple[object, int], str] = {}

    # -- which SMC each context is in (for Hafnium's own departures) --------------------------
    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        super().call(layer, caller, args)
        if layer == "smc":
            self.smc_calls.setdefault(self.execution.machine.current, []).append(
                abi.name(args[0]) if args else "?"
            )

    def ret(self, layer: str, caller: str, result: tuple[int, ...]) -> None:
        if layer == "smc":
            stack = self.smc_calls.get(self.execution.machine.current)
            if stack:
                stack.pop()
        elif layer == "hvc":
            # Xen never holds a lock across a return to its guest: one still held was leaked
            # (the lock-leak monitor's finding), and orders taken under it are its echo.
            self.held.pop(self.context(caller), None)
        super().ret(layer, caller, result)

    # -- acquisitions ------------------------------------------------------------------------
    def acquired(self, lock: object) -> None:
        if not isinstance(lock, Spinlock | RwLock):
            return
        ctx = self.execution.machine.current
        site, trylock = self._site()
        read = isinstance(lock, RwLock) and lock.writer != ctx
        name = lock.name
        node = lock_class(name)
        held = self.held.setdefault(ctx, [])
        if not trylock:
            for h_lock, h_node, h_site, h_read in held:
                if h_lock is lock:
                    continue
                h_name = getattr(h_lock, "name", "?")
                a, b = (h_node, node) if h_node != node else (h_name, name)
                if a == b:
                    continue  # two locks of one name: nothing tells them apart
                if self._seen(a, b, h_read, read):
                    continue
                smc = self.smc_calls.get(ctx)
                s = Sighting(
                    h_name,
                    h_site,
                    name,
                    site,
                    ctx,
                    self._call(ctx),
                    smc[-1] if smc else "",
                    h_read,
                    read,
                )
                self._edge(a, b, s)
        held.append((lock, node, site, read))

    def released(self, lock: object) -> None:
        held = self.held.get(self.execution.machine.current)
        if not held:
            return
        for i in range(len(held) - 1, -1, -1):
            if held[i][0] is lock:
                del held[i]
                return

    def _seen(self, a: str, b: str, held_read: bool, read: bool) -> bool:
        """Whether edge ``(a, b)`` is known in these modes and belongs to no inversion: then
        this acquisition adds nothing (the common case, checked before building a sighting)."""
        g = self.graph
        seen = g.edges.get((a, b))
        return (
            seen is not None
            and (a, b) not in g.inversions
            and any(x.held_read == held_read and x.taken_read == read for x in seen)
        )

    def _call(self, ctx: str) -> str:
        name = self.current_call(ctx)
        return f"{ctx} {name}" if name else ""

    def _site(self) -> tuple[str, bool]:
        """The first frame above the lock plumbing (``file.py:line function``), and whether
        the acquisition is a trylock."""
        f: FrameType | None = sys._getframe(2)
        trylock = False
        while f is not None and _is_plumbing(f):
            if f.f_code.co_name == "spin_trylock":
                trylock = True
            f = f.f_back
        if f is None:
            return "?", trylock
        key = (f.f_code, f.f_lineno)
        site = self._sites.get(key)
        if site is None:
            site = f"{Path(f.f_code.co_filename).name}:{f.f_lineno} {f.f_code.co_name}"
            self._sites[key] = site
        return site, trylock

    # -- judging -----------------------------------------------------------------------------
    def _edge(self, a: str, b: str, s: Sighting) -> None:
        g = self.graph
        known = g.inversions.get((a, b))
        if known is not None:
            self._say(a, b, *known)
            return
        if not g.add(a, b, s):
            return
        # The reverse edge, with modes that block each other.
        for r in g.edges.get((b, a), ()):
            if _blocks(s.held_read, r.taken_read) and _blocks(r.held_read, s.taken_read):
                self._inversion([(a, b), (b, a)], f"{s.describe()}, but {r.describe()}", s, r)
                return
        if s.held_read or s.taken_read:
            return
        chain = g.path(b, a)
        if chain is not None and len(chain) > 2:
            hops = list(itertools.pairwise(chain))
            others = [g.edges[h][0] for h in hops]
            text = "; ".join(o.describe() for o in others)
            self._inversion([(a, b), *hops], f"{s.describe()}, but {text} (a cycle)", s, *others)

    def _inversion(self, edges: list[tuple[str, str]], text: str, *sightings: Sighting) -> None:
        why = _hafnium_departure(sightings)
        kind = "accepted" if why else "lock-order"
        message = f"lock order inverted: {text}"
        if why:
            message = f"{message} ({why})"
        for e in edges:
            self.graph.inversions[e] = (kind, message)
        self._say(*edges[0], kind, message)

    def _say(self, a: str, b: str, kind: str, message: str) -> None:
        if (kind, message) in self.said:
            return
        self.said.add((kind, message))
        if kind == "accepted":
            return  # Hafnium's own departure, mirrored on purpose
        ctx = self.execution.machine.current
        self.pending.append((kind, message, (ctx,), self.calls_of(ctx)))

    def on_finish(self) -> None:
        for kind, message, threads, calls in self.pending:
            self.report(kind, message, threads=threads, calls=calls)


def _hafnium_departure(sightings: tuple[Sighting, ...]) -> str:
    """Why the inversion is Hafnium's own (one side in a call where Hafnium v2.14 departs from
    its order, and only SPMC locks involved), or ``""``."""
    if not all(s.held.startswith("spmc.") and s.taken.startswith("spmc.") for s in sightings):
        return ""
    calls = {c for c, _ in LOCK_ORDER_EXCEPTIONS}
    for s in sightings:
        if s.smc in calls:
            return f"Hafnium v2.14 takes {dict(LOCK_ORDER_EXCEPTIONS)[s.smc]} in {s.smc}"
    return ""


__all__ = ["LockOrderGraph", "LockOrderMonitor", "Sighting", "lock_class"]
