"""data-race: two contexts touching the same shared state, at least one writing, with nothing
ordering them.

Happens-before is tracked with vector clocks (as Go's race detector and FastTrack do): a lock
release publishes the releasing context's clock into the lock, a later acquire joins it; an
atomic store or read-modify-write both joins and publishes, an atomic load only joins (C11:
a load synchronises with the store it reads from, never with another load). So atomics never
race and order what surrounds them, and two loads, which commute, order nothing: the verdict is
the same for every schedule the partial-order reduction takes as equivalent. Two accesses race
when neither happens before the other.

What is checked:

- declared shared fields (:class:`~ffasim.machine.Guarded`): every read and write. A field with a
  guard lock that is accessed without it races with any unordered conflicting access; a field
  without a guard (published once, then read without a lock) races with any unordered write;
- memory: the accesses of the hypervisor, the SPMC and the partitions to any frame, byte range by
  byte range. Guests are not judged: their vCPUs owe the hypervisor no locking, and what a guest
  can do to the hypervisor through racing writes is the double-fetch monitor's business. Nor is
  a partition touching a guest's page (one the guest shared with it, its own TX buffer
  included): it acts with the guest's authority there, as a third vCPU would.

Only accesses by the checker's threads count: the single-threaded boot before them and the
finish step after them are ordered with everything. The race is reported where it is detected
(the second access), naming both accesses, once per field or frame.

Happens-before only sees the race the explored schedule left unordered: two accesses that a
lock unrelated to the field (or an atomic, or the order the threads happened to run in)
ordered this time are not reported, though another vCPU, another call, another schedule may
not order them. So guarded fields are also held to their locking discipline across threads
(the lockset rule of Eraser, Savage et al., TOCS 1997): per field and thread, the locks held
at every access; a field touched by two threads, written by one, with no lock common to all
their accesses is reported, however this schedule ordered them. Unlike Eraser, there is no
"exclusive" first phase (it makes the verdict depend on which thread came first, which the
partial-order reduction does not preserve): fields are initialised before the threads start.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from ...machine import Frame
from ...machine.locks import RwLock, Spinlock
from ._base import CallTracking, frame_name, is_guest_party, span

VectorClock = dict[str, int]

_PARTITION = re.compile(r"sp[0-9a-f]+\Z")

HISTORY = 64
"""Accesses kept per thread and frame or field; older ones are forgotten (a bound on memory and
time: a race is found as soon as both sides are within this window, which short scenarios
always are). Per thread, so that what is kept does not depend on how threads interleave."""


def _join(into: VectorClock, other: VectorClock) -> None:
    for t, c in other.items():
        if into.get(t, 0) < c:
            into[t] = c


class Access(NamedTuple):
    thread: str
    epoch: int  # the thread's own clock component at the access
    offset: int
    size: int
    write: bool
    ctx: str  # the context ("d0v0")
    call: str | None  # the hypercall it was in ("FFA_PARTITION_INFO_GET"), if any
    party: str
    locked: bool  # the field's guard was held (fields only)


def _held(guard: Spinlock | RwLock, ctx: str, write: bool) -> bool:
    if isinstance(guard, Spinlock):
        return guard.holder == ctx
    return guard.writer == ctx or (not write and ctx in guard.readers)


class RaceMonitor(CallTracking):
    """Vector-clock race detection over guarded fields and shared memory."""

    step_kinds = frozenset({"atomic"})  # the only steps that order anything here

    def __init__(self, lockset: bool = True) -> None:
        super().__init__()
        self.lockset = lockset
        """Also judge guarded fields by the lockset rule (off: happens-before alone)."""
        self.clocks: dict[str, VectorClock] = {}
        self.sync: dict[object, VectorClock] = {}  # lock or atomic -> published clock
        self.live: set[str] = set()
        # frame / field -> thread -> its latest accesses (at most HISTORY each)
        self.frames: dict[int, dict[str, list[Access]]] = {}
        self.fields: dict[Any, dict[str, list[Access]]] = {}
        self.reported: set[object] = set()
        # field -> thread -> [locks held at each of its accesses, wrote?, access to name]
        self.locksets: dict[Any, dict[str, list[Any]]] = {}

    # -- happens-before ---------------------------------------------------------------------
    def on_thread_start(self, thread: str) -> None:
        self.live.add(thread)
        self.clocks[thread] = {thread: 1}

    def on_thread_end(self, thread: str) -> None:
        self.live.discard(thread)

    def _thread(self) -> str | None:
        t = self.execution.current_thread
        return t if t in self.live else None

    def _release(self, t: str, key: object) -> None:
        vc = self.clocks[t]
        _join(self.sync.setdefault(key, {}), vc)
        vc[t] += 1

    def acquired(self, lock: object) -> None:
        t = self._thread()
        if t is not None and lock in self.sync:
            _join(self.clocks[t], self.sync[lock])

    def released(self, lock: object) -> None:
        t = self._thread()
        if t is not None:
            self._release(t, lock)

    def on_step(self, thread: str, kind: str, key: object, write: bool) -> None:
        if kind != "atomic" or thread not in self.live:
            return
        if key in self.sync:
            _join(self.clocks[thread], self.sync[key])
        if write:  # a load acquires what the stores before it released, and releases nothing
            self._release(thread, key)

    # -- accesses ---------------------------------------------------------------------------
    def _check(
        self, history: dict[str, list[Access]], new: Access, vc: VectorClock
    ) -> Access | None:
        """The earlier access of another context that conflicts with ``new`` and is not
        ordered before it, if any: of several, the first thread's (in name order) earliest,
        so that every equivalent schedule names the same one."""
        end = new.offset + new.size
        found = None
        for thread in sorted(history):
            if thread == new.thread:
                continue
            seen = vc.get(thread, 0)
            for old in history[thread]:
                if old.epoch <= seen or not (old.write or new.write):
                    continue  # ordered before us, or two reads
                if old.offset < end and new.offset < old.offset + old.size:
                    found = old
                    break
            if found is not None:
                break
        mine = history.setdefault(new.thread, [])
        mine.append(new)
        if len(mine) > HISTORY:
            del mine[0]
        return found

    def guarded_access(self, field: Any, write: bool) -> None:
        t = self._thread()
        if t is None:
            return
        ctx = self.execution.machine.current
        guard = getattr(field, "guard", None)
        locked = guard is not None and _held(guard, ctx, write)
        vc = self.clocks[t]
        new = Access(t, vc[t], 0, 1, write, ctx, self.current_call(ctx), "xen", locked)
        old = self._check(self.fields.setdefault(field, {}), new, vc)
        if old is None:
            if self.lockset and guard is not None and field not in self.reported:
                self._lockset(field, guard, new)
            return
        if field in self.reported:
            return
        self.reported.add(field)
        name = getattr(field, "name", repr(field))
        if guard is not None:
            rule = f"guarded by {guard.name}"
            unlocked = [a.thread for a in (old, new) if not a.locked]
            how = f"; {' and '.join(unlocked)} did not hold it" if unlocked else ""
        else:
            rule, how = "published once, read without a lock", ""
        self.report(
            "data-race",
            f"{name} ({rule}): {_verb(new)} by {_where(new)} races with {_verb(old)} by "
            f"{_where(old)}{how}",
            threads=(old.thread, new.thread),
            calls=_calls(old, new),
        )

    def _lockset(self, field: Any, guard: Spinlock | RwLock, new: Access) -> None:
        """The lockset rule for ``field``: report once two threads touched it, one wrote,
        and no lock was held at every access of theirs."""
        held = frozenset(
            id(lock)
            for lock in self.execution.machine.held_by(new.ctx)
            if not new.write or isinstance(lock, Spinlock) or lock.writer == new.ctx
        )
        per_thread = self.locksets.setdefault(field, {})
        mine = per_thread.get(new.thread)
        if mine is None:
            per_thread[new.thread] = [held, new.write, new]
        else:
            mine[0] &= held
            mine[1] |= new.write
            if not new.locked or mine[2].locked:
                mine[2] = new  # the access to name: one without the guard, if any
        if len(per_thread) < 2 or not any(v[1] for v in per_thread.values()):
            return
        common = frozenset.intersection(*(v[0] for v in per_thread.values()))
        if common:
            return
        self.reported.add(field)
        name = getattr(field, "name", repr(field))
        others = [per_thread[t][2] for t in sorted(per_thread) if t != new.thread]
        other = next((a for a in others if not a.locked), others[0])
        mine_access = per_thread[new.thread][2]
        self.report(
            "data-race",
            f"{name} (guarded by {guard.name}): {_how(mine_access)} and {_how(other)}: no lock "
            f"is held at every access of both (lockset: another schedule, or another vCPU "
            f"making the same call, leaves them unordered)",
            threads=(other.thread, mine_access.thread),
            calls=_calls(other, mine_access),
        )

    def mem_access(self, party: str, frame: Frame, offset: int, size: int, write: bool) -> None:
        if is_guest_party(party) or (_PARTITION.match(party) and is_guest_party(frame.owner)):
            return
        t = self._thread()
        if t is None:
            return
        ctx = self.execution.machine.current
        vc = self.clocks[t]
        new = Access(t, vc[t], offset, size, write, ctx, self.current_call(ctx), party, False)
        old = self._check(self.frames.setdefault(frame.mfn, {}), new, vc)
        if old is None or ("mfn", frame.mfn) in self.reported:
            return
        self.reported.add(("mfn", frame.mfn))
        lo, hi = max(old.offset, offset), min(old.offset + old.size, offset + size)
        self.report(
            "data-race",
            f"{span(lo, hi - lo)} of {frame_name(frame)}: {new.party} {_verb(new)} by "
            f"{_where(new)} races with {old.party} {_verb(old)} by {_where(old)} (no lock or "
            f"atomic orders them)",
            threads=(old.thread, new.thread),
            calls=_calls(old, new),
        )

    def page_alloc(self, frame: Frame) -> None:
        self.frames.pop(frame.mfn, None)

    def page_free(self, frame: Frame) -> None:
        self.frames.pop(frame.mfn, None)


def _verb(a: Access) -> str:
    return "write" if a.write else "read"


def _how(a: Access) -> str:
    """``write by d0v0 in FFA_X without the lock`` (or ``... holding it``)."""
    return f"{_verb(a)} by {_where(a)} {'holding it' if a.locked else 'without it'}"


def _where(a: Access) -> str:
    """``d0v0 in FFA_PARTITION_INFO_GET`` (or just ``d0v0`` outside a hypercall)."""
    return f"{a.ctx} in {a.call}" if a.call else a.ctx


def _calls(*accesses: Access) -> tuple[str, ...]:
    return tuple(f"{a.ctx} {a.call}" for a in accesses if a.call)
