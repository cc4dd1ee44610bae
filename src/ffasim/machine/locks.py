"""Spinlocks, rwlocks, atomics and guarded fields with Xen's semantics.

- ``spin_is_locked(l)`` is true whoever holds ``l`` (not only the caller);
- ``spin_trylock`` fails instead of waiting;
- a context waiting for a held lock does not spin: the sink's ``block`` disables it until the
  lock is released (under the checker), or reports a deadlock (in a sequential run);
- unlocking a lock the caller does not hold panics, as Xen's lock debugging does.

Every operation is a scheduling point on the lock, so the checker can preempt around it.
Xen-style free functions (``spin_lock(l)``) keep mirrored code close to the C.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from .errors import HypervisorPanic
from .events import ATOMIC, GUARDED, LOCK

if TYPE_CHECKING:
    from .machine import Machine

T = TypeVar("T")


class Lockable(Protocol):
    name: str
    machine: Machine

    def describe_holder(self) -> str: ...


class Spinlock:
    """A Xen spinlock. ``holder`` is the context holding it, or ``None``."""

    __slots__ = ("holder", "machine", "name")

    def __init__(self, machine: Machine, name: str) -> None:
        self.machine = machine
        self.name = name
        self.holder: str | None = None

    def describe_holder(self) -> str:
        return self.holder or "nobody"

    def __repr__(self) -> str:
        return f"<spinlock {self.name} held by {self.describe_holder()}>"


def spin_lock(lock: Spinlock) -> None:
    m = lock.machine
    sink = m.sink
    sink.point(LOCK, lock, True)
    while lock.holder is not None:
        sink.block(lock)
    lock.holder = m.current
    m.held.append(lock)
    sink.acquired(lock)


def spin_trylock(lock: Spinlock) -> bool:
    m = lock.machine
    m.sink.point(LOCK, lock, True)
    if lock.holder is not None:
        return False
    lock.holder = m.current
    m.held.append(lock)
    m.sink.acquired(lock)
    return True


def spin_unlock(lock: Spinlock) -> None:
    m = lock.machine
    sink = m.sink
    sink.point(LOCK, lock, True)
    if lock.holder != m.current:
        raise HypervisorPanic(f"{m.current} unlocks {lock.name} held by {lock.describe_holder()}")
    lock.holder = None
    held = m.held
    if held and held[-1] is lock:
        held.pop()  # the usual last-in, first-out order
    else:
        held.remove(lock)
    sink.released(lock)


def spin_is_locked(lock: Spinlock) -> bool:
    """True when any context holds ``lock`` (Xen semantics)."""
    lock.machine.sink.point(LOCK, lock, False)
    return lock.holder is not None


class RwLock:
    """A Xen rwlock: many readers or one writer."""

    __slots__ = ("machine", "name", "readers", "writer")

    def __init__(self, machine: Machine, name: str) -> None:
        self.machine = machine
        self.name = name
        self.readers: list[str] = []
        self.writer: str | None = None

    def describe_holder(self) -> str:
        if self.writer:
            return f"{self.writer} (write)"
        return ", ".join(self.readers) + " (read)" if self.readers else "nobody"


def read_lock(lock: RwLock) -> None:
    m = lock.machine
    m.sink.point(LOCK, lock, True)
    while lock.writer is not None:
        m.sink.block(lock)
    lock.readers.append(m.current)
    m.held.append(lock)
    m.sink.acquired(lock)


def read_unlock(lock: RwLock) -> None:
    m = lock.machine
    m.sink.point(LOCK, lock, True)
    if m.current not in lock.readers:
        raise HypervisorPanic(f"{m.current} read-unlocks {lock.name} it does not hold")
    lock.readers.remove(m.current)
    m.held.remove(lock)
    m.sink.released(lock)


def write_lock(lock: RwLock) -> None:
    m = lock.machine
    m.sink.point(LOCK, lock, True)
    while lock.writer is not None or lock.readers:
        m.sink.block(lock)
    lock.writer = m.current
    m.held.append(lock)
    m.sink.acquired(lock)


def write_unlock(lock: RwLock) -> None:
    m = lock.machine
    m.sink.point(LOCK, lock, True)
    if lock.writer != m.current:
        raise HypervisorPanic(
            f"{m.current} write-unlocks {lock.name} held by {lock.describe_holder()}"
        )
    lock.writer = None
    m.held.remove(lock)
    m.sink.released(lock)


def rw_is_locked(lock: RwLock) -> bool:
    lock.machine.sink.point(LOCK, lock, False)
    return lock.writer is not None or bool(lock.readers)


class Atomic:
    """An integer accessed with atomic operations (Xen's ``atomic_t``, ``ACCESS_ONCE``)."""

    __slots__ = ("machine", "name", "value")

    def __init__(self, machine: Machine, name: str, value: int = 0) -> None:
        self.machine = machine
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return f"<atomic {self.name}={self.value}>"

    def read(self) -> int:
        self.machine.sink.point(ATOMIC, self, False)
        return self.value

    def set(self, value: int) -> None:
        self.machine.sink.point(ATOMIC, self, True)
        self.value = value

    def add(self, delta: int) -> int:
        """Add ``delta``; return the new value."""
        self.machine.sink.point(ATOMIC, self, True)
        self.value += delta
        return self.value

    def inc(self) -> int:
        return self.add(1)

    def dec(self) -> int:
        return self.add(-1)

    def test_and_set(self) -> bool:
        """Set to 1; return whether it was already non-zero."""
        self.machine.sink.point(ATOMIC, self, True)
        old = self.value
        self.value = 1
        return bool(old)

    def test_and_clear(self) -> bool:
        """Set to 0; return whether it was non-zero."""
        self.machine.sink.point(ATOMIC, self, True)
        old = self.value
        self.value = 0
        return bool(old)

    def cmpxchg(self, old: int, new: int) -> int:
        """Store ``new`` if the value is ``old``; return the value seen."""
        self.machine.sink.point(ATOMIC, self, True)
        seen = self.value
        if seen == old:
            self.value = new
        return seen


class Shared(Generic[T]):
    """A plain attribute that several contexts touch, but not always under one lock (Xen's
    ``ctx->page_count``, written under two locks and read under either; a timer's expiry):
    a descriptor that declares each read and write to the machine's sink
    (``EventSink.access``, kind ``"guarded"``), so that the checker's partial-order reduction
    orders the steps that touch it, without a scheduling point of its own.

    The owning object has ``machine`` and ``shared_key`` (a name prefix, ``"d0.ffa"``) attributes;
    the value lives in ``_<name>``. The race monitor does not judge these fields (no single guard
    describes them): declare a :class:`Guarded` field when one does."""

    def __init__(self, default: T) -> None:
        self.default = default
        self.name = ""
        self.slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.slot = "_" + name

    def __get__(self, obj: object, objtype: type | None = None) -> T:
        if obj is None:
            return self  # type: ignore[return-value]
        d = obj.__dict__
        d["machine"].sink.access(GUARDED, f"{d['shared_key']}.{self.name}", False)
        return d.get(self.slot, self.default)

    def __set__(self, obj: object, value: T) -> None:
        d = obj.__dict__
        d["machine"].sink.access(GUARDED, f"{d['shared_key']}.{self.name}", True)
        d[self.slot] = value


class Guarded(Generic[T]):
    """A field that C code shares under ``guard`` (a lock), or ``None`` when it is published
    once and then read without a lock. Each access is reported, so the race monitor can check
    that the guard was held (or that the field never changes after publication)."""

    __slots__ = ("guard", "machine", "name", "value")

    def __init__(
        self, machine: Machine, name: str, value: T, guard: Spinlock | RwLock | None = None
    ) -> None:
        self.machine = machine
        self.name = name
        self.value = value
        self.guard = guard

    def __repr__(self) -> str:
        return f"<guarded {self.name}={self.value!r}>"

    def get(self) -> T:
        sink = self.machine.sink
        sink.point(GUARDED, self, False)
        sink.guarded_access(self, False)
        return self.value

    def set(self, value: T) -> None:
        sink = self.machine.sink
        sink.point(GUARDED, self, True)
        sink.guarded_access(self, True)
        self.value = value
