"""Xen lock semantics of the machine layer: who holds, who may unlock, what a wait means."""

from __future__ import annotations

import pytest

from ffasim.machine import (
    ASSERT,
    Atomic,
    Deadlock,
    EventSink,
    Guarded,
    HypervisorPanic,
    Machine,
    read_lock,
    read_unlock,
    rw_is_locked,
    spin_is_locked,
    spin_lock,
    spin_trylock,
    spin_unlock,
    write_lock,
    write_unlock,
)


class Recorder(EventSink):
    """Keeps scheduling points and lock events in order."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def point(self, kind, key, write):
        self.events.append(("point", kind, getattr(key, "name", key), write))

    def acquired(self, lock):
        self.events.append(("acquired", lock.name, lock.machine.current))

    def released(self, lock):
        self.events.append(("released", lock.name, lock.machine.current))

    def guarded_access(self, field, write):
        self.events.append(("guarded", field.name, write))


def test_spin_is_locked_is_true_whoever_holds_the_lock():
    m = Machine()
    lock = m.spinlock("ffa_spmc_rx_lock")
    m.current = "d0v0"
    assert not spin_is_locked(lock)
    spin_lock(lock)
    m.current = "d1v0"  # another CPU asks
    assert spin_is_locked(lock)
    m.current = "d0v0"
    spin_unlock(lock)
    assert not spin_is_locked(lock)


def test_spin_trylock_fails_when_held_by_anyone():
    m = Machine()
    lock = m.spinlock("tx_lock")
    m.current = "d0v0"
    assert spin_trylock(lock)
    m.current = "d1v0"
    assert not spin_trylock(lock)
    assert lock.holder == "d0v0"
    assert m.held == [lock]


def test_spin_trylock_on_own_lock_fails_too():
    # Xen spinlocks are not recursive: a trylock by the holder fails.
    m = Machine()
    lock = m.spinlock("l")
    spin_lock(lock)
    assert not spin_trylock(lock)


def test_unlock_by_a_non_holder_panics():
    m = Machine()
    lock = m.spinlock("rx_lock")
    m.current = "d0v0"
    spin_lock(lock)
    m.current = "d1v0"
    with pytest.raises(HypervisorPanic, match=r"^d1v0 unlocks rx_lock held by d0v0$"):
        spin_unlock(lock)


def test_unlock_of_a_free_lock_panics():
    m = Machine()
    with pytest.raises(HypervisorPanic, match="held by nobody"):
        spin_unlock(m.spinlock("l"))


def test_sequential_relock_is_a_deadlock():
    m = Machine()
    lock = m.spinlock("ffa_spmc_tx_lock")
    m.current = "d0v0"
    spin_lock(lock)
    with pytest.raises(Deadlock, match=r"^d0v0 waits forever for ffa_spmc_tx_lock held by d0v0$"):
        spin_lock(lock)


def test_sequential_wait_for_a_lock_another_context_holds_is_a_deadlock():
    m = Machine()
    lock = m.spinlock("l")
    m.current = "d0v0"
    spin_lock(lock)
    m.current = "d1v0"
    with pytest.raises(Deadlock):
        spin_lock(lock)


def test_lock_events_reach_the_sink_in_order():
    sink = Recorder()
    m = Machine(sink)
    lock = m.spinlock("l")
    m.current = "d0v0"
    spin_lock(lock)
    spin_is_locked(lock)
    spin_unlock(lock)
    assert sink.events == [
        ("point", "lock", "l", True),
        ("acquired", "l", "d0v0"),
        ("point", "lock", "l", False),
        ("point", "lock", "l", True),
        ("released", "l", "d0v0"),
    ]


def test_held_by_lists_each_contexts_locks():
    m = Machine()
    a, b, r = m.spinlock("a"), m.spinlock("b"), m.rwlock("r")
    m.current = "d0v0"
    spin_lock(a)
    read_lock(r)
    m.current = "d1v0"
    spin_lock(b)
    read_lock(r)
    # Each context's locks, once each. (Their order follows Machine.held, where the shared
    # rwlock first appears for d0v0, not each context's own acquisition order.)
    assert m.held_by("d0v0") == [a, r]
    assert set(map(id, m.held_by("d1v0"))) == {id(b), id(r)}
    assert len(m.held_by("d1v0")) == 2
    assert m.held_by("d2v0") == []


def test_rwlock_allows_many_readers():
    m = Machine()
    r = m.rwlock("ffa_ctx_list_rwlock")
    m.current = "d0v0"
    read_lock(r)
    m.current = "d1v0"
    read_lock(r)
    assert r.readers == ["d0v0", "d1v0"]
    assert rw_is_locked(r)
    read_unlock(r)
    m.current = "d0v0"
    read_unlock(r)
    assert not rw_is_locked(r)


def test_rwlock_writer_waits_for_readers():
    m = Machine()
    r = m.rwlock("list")
    m.current = "d0v0"
    read_lock(r)
    m.current = "toolstack"
    with pytest.raises(Deadlock, match=r"held by d0v0 \(read\)$"):
        write_lock(r)


def test_rwlock_reader_waits_for_writer():
    m = Machine()
    r = m.rwlock("list")
    m.current = "toolstack"
    write_lock(r)
    m.current = "d0v0"
    with pytest.raises(Deadlock, match=r"held by toolstack \(write\)$"):
        read_lock(r)
    m.current = "toolstack"
    write_unlock(r)
    assert not rw_is_locked(r)


def test_rwlock_unlock_by_non_holder_panics():
    m = Machine()
    r = m.rwlock("list")
    m.current = "d0v0"
    read_lock(r)
    m.current = "d1v0"
    with pytest.raises(HypervisorPanic, match="read-unlocks list it does not hold"):
        read_unlock(r)
    with pytest.raises(HypervisorPanic, match="write-unlocks list held by d0v0"):
        write_unlock(r)


def test_atomic_operations_return_xen_values():
    m = Machine()
    a = Atomic(m, "ffa_vm_count")
    assert a.inc() == 1
    assert a.add(4) == 5
    assert a.dec() == 4
    assert a.cmpxchg(3, 9) == 4 and a.read() == 4
    assert a.cmpxchg(4, 9) == 4 and a.read() == 9
    assert a.test_and_set() is True
    assert a.test_and_clear() is True and a.read() == 0
    assert a.test_and_clear() is False


def test_guarded_field_reports_every_access():
    sink = Recorder()
    m = Machine(sink)
    lock = m.spinlock("ctx_lock")
    g = Guarded(m, "rx_is_free", True, lock)
    g.set(False)
    assert g.get() is False
    assert [e for e in sink.events if e[0] == "guarded"] == [
        ("guarded", "rx_is_free", True),
        ("guarded", "rx_is_free", False),
    ]


def test_assert_false_panics_with_xen_text():
    ASSERT(True, "never")
    with pytest.raises(HypervisorPanic, match=r"^Assertion '!spin_is_locked\(&lock\)' failed$"):
        ASSERT(False, "!spin_is_locked(&lock)")
