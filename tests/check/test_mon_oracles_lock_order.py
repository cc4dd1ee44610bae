"""lock-order: lockdep over lock classes, across executions, with trylocks and readers exempt."""

from __future__ import annotations

from test_monitors import Harness

from ffasim import abi
from ffasim.check.monitors import LockOrderGraph, LockOrderMonitor, monitor_set
from ffasim.check.monitors.lock_order import lock_class
from ffasim.machine import (
    read_lock,
    read_unlock,
    spin_lock,
    spin_trylock,
    spin_unlock,
    write_lock,
    write_unlock,
)
from ffasim.machine.locks import Spinlock


def _found(h: Harness) -> list[str]:
    """The kinds found once the execution finishes (when lock-order reports)."""
    h.finish()
    return h.kinds()


def _nest(outer: Spinlock, inner: Spinlock) -> None:
    spin_lock(outer)
    spin_lock(inner)
    spin_unlock(inner)
    spin_unlock(outer)


def test_lock_class_abstracts_domains_vms_and_vcpus() -> None:
    assert lock_class("d1.ffa.rx_lock") == lock_class("d2.ffa.rx_lock") == "d*.ffa.rx_lock"
    assert lock_class("spmc.vm8001.vcpu0.lock") == "spmc.vm*.vcpu*.lock"
    assert lock_class("spmc.vm1.lock") == "spmc.vm*.lock"
    assert lock_class("ffa_spmc_rx_lock") == "ffa_spmc_rx_lock"
    assert lock_class("spmc.nwd_vms_lock") == "spmc.nwd_vms_lock"


def test_lock_order_inversion_in_one_execution_is_reported_without_deadlock() -> None:
    h = Harness(LockOrderMonitor())
    a, b = h.machine.spinlock("d0.ffa.rx_lock"), h.machine.spinlock("d0.ffa.tx_lock")
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_RXTX_MAP_64):
        _nest(a, b)
    with h.thread("d0v1"), h.hvc("d0v1", abi.FFA_MSG_SEND2):
        _nest(b, a)
    assert _found(h) == ["lock-order"]
    msg = h.findings[0].message
    assert "d0.ffa.tx_lock" in msg and "d0.ffa.rx_lock" in msg
    assert "in FFA_MSG_SEND2" in msg and "in FFA_RXTX_MAP_64" in msg
    assert "test_mon_oracles_lock_order.py" in msg  # the call sites


def test_lock_order_same_order_twice_is_clean() -> None:
    h = Harness(LockOrderMonitor())
    a, b = h.machine.spinlock("d0.ffa.rx_lock"), h.machine.spinlock("d0.ffa.tx_lock")
    for t in ("d0v0", "d0v1"):
        with h.thread(t):
            _nest(a, b)
    assert _found(h) == []


def test_lock_order_classes_join_different_domains() -> None:
    h = Harness(LockOrderMonitor())
    m = h.machine
    with h.thread("d0v0"):
        _nest(m.spinlock("d0.ffa.tx_lock"), m.spinlock("d1.ffa.rx_lock"))
    with h.thread("d2v0"):
        _nest(m.spinlock("d2.ffa.rx_lock"), m.spinlock("d2.ffa.tx_lock"))
    assert _found(h) == ["lock-order"]


def test_lock_order_is_remembered_across_executions_of_one_exploration() -> None:
    make = monitor_set()
    first = Harness(*make())
    with first.thread("d0v0"):
        _nest(first.machine.spinlock("A"), first.machine.spinlock("B"))
    second = Harness(*make())
    with second.thread("d0v0"):
        _nest(second.machine.spinlock("B"), second.machine.spinlock("A"))
    assert _found(first) == []
    assert _found(second) == ["lock-order"]
    # A replay of the second execution with the same factory sees it again (same message).
    third = Harness(*make())
    with third.thread("d0v0"):
        _nest(third.machine.spinlock("B"), third.machine.spinlock("A"))
    third.finish()
    assert [f.message for f in third.findings] == [f.message for f in second.findings]


def test_lock_order_separate_graphs_forget_each_other() -> None:
    first = Harness(LockOrderMonitor(LockOrderGraph()))
    with first.thread("d0v0"):
        _nest(first.machine.spinlock("A"), first.machine.spinlock("B"))
    second = Harness(LockOrderMonitor(LockOrderGraph()))
    with second.thread("d0v0"):
        _nest(second.machine.spinlock("B"), second.machine.spinlock("A"))
    assert _found(second) == []


def test_lock_order_trylock_adds_no_edge_to_the_lock_it_takes() -> None:
    h = Harness(LockOrderMonitor())
    a, b = h.machine.spinlock("A"), h.machine.spinlock("B")
    with h.thread("d0v0"):
        _nest(a, b)
    with h.thread("d0v1"):
        spin_lock(b)
        assert spin_trylock(a)  # cannot wait, so cannot deadlock
        spin_unlock(a)
        spin_unlock(b)
    assert _found(h) == []


def test_lock_order_lock_held_by_trylock_still_orders_what_is_taken_under_it() -> None:
    """Xen's SEND2 takes the sender's tx_lock with a trylock, then waits for the receiver's
    rx_lock: the edge tx_lock -> rx_lock counts."""
    h = Harness(LockOrderMonitor())
    m = h.machine
    with h.thread("d0v0"):
        _nest(m.spinlock("d1.ffa.rx_lock"), m.spinlock("d1.ffa.tx_lock"))
    with h.thread("d0v1"):
        tx, rx = m.spinlock("d0.ffa.tx_lock"), m.spinlock("d1.ffa.rx_lock")
        assert spin_trylock(tx)
        spin_lock(rx)
        spin_unlock(rx)
        spin_unlock(tx)
    assert _found(h) == ["lock-order"]


def test_lock_order_readers_on_both_sides_do_not_block() -> None:
    h = Harness(LockOrderMonitor())
    m = h.machine
    rw, s = m.rwlock("ffa_ctx_list_rwlock"), m.spinlock("d0.ffa.lock")
    with h.thread("d0v0"):
        read_lock(rw)
        spin_lock(s)
        spin_unlock(s)
        read_unlock(rw)
    with h.thread("d1v0"):
        spin_lock(s)
        read_lock(rw)
        read_unlock(rw)
        spin_unlock(s)
    assert _found(h) == []


def test_lock_order_writer_against_reader_is_reported() -> None:
    h = Harness(LockOrderMonitor())
    m = h.machine
    rw, s = m.rwlock("ffa_ctx_list_rwlock"), m.spinlock("d0.ffa.lock")
    with h.thread("d0v0"):
        read_lock(rw)
        spin_lock(s)
        spin_unlock(s)
        read_unlock(rw)
    with h.thread("d1v0"):
        spin_lock(s)
        write_lock(rw)
        write_unlock(rw)
        spin_unlock(s)
    assert _found(h) == ["lock-order"]
    assert "[read]" in h.findings[0].message


def test_lock_order_longer_cycle_is_reported() -> None:
    h = Harness(LockOrderMonitor())
    a, b, c = (h.machine.spinlock(n) for n in "ABC")
    with h.thread("d0v0"):
        _nest(a, b)
        _nest(b, c)
    with h.thread("d0v1"):
        _nest(c, a)
    assert _found(h) == ["lock-order"]
    assert "(a cycle)" in h.findings[0].message


def test_lock_order_same_class_judged_by_instance() -> None:
    h = Harness(LockOrderMonitor())
    m = h.machine
    d1, d2, d3 = (m.spinlock(f"d{i}.ffa.lock") for i in (1, 2, 3))
    with h.thread("d0v0"):
        _nest(d1, d2)
        _nest(d2, d3)
        _nest(d1, d3)
    assert _found(h) == []  # one class, but always lowest first
    with h.thread("d0v1"):
        _nest(d2, d1)
    assert _found(h) == ["lock-order"]


def test_lock_order_hafnium_departure_is_accepted() -> None:
    h = Harness(LockOrderMonitor())
    m = h.machine
    vm0, stage1 = m.spinlock("spmc.vm0.lock"), m.spinlock("spmc.mm_stage1_lock")
    with h.thread("d0v0"):
        _nest(vm0, stage1)
        h.call("smc", "xen", abi.regs(abi.FFA_RXTX_MAP_64))
        _nest(stage1, vm0)
        h.ret("smc", "xen", abi.success())
    assert _found(h) == []


def test_lock_order_is_reported_when_the_execution_finishes() -> None:
    h = Harness(LockOrderMonitor())
    a, b = h.machine.spinlock("A"), h.machine.spinlock("B")
    with h.thread("d0v0"):
        _nest(a, b)
        _nest(b, a)
    assert h.findings == []  # the execution runs on
    assert _found(h) == ["lock-order"]


def test_lock_order_ignores_orders_under_a_leaked_lock() -> None:
    h = Harness(LockOrderMonitor())
    a, b = h.machine.spinlock("A"), h.machine.spinlock("B")
    with h.thread("d0v0"):
        _nest(b, a)
        with h.hvc("d0v0", abi.FFA_RXTX_MAP_64):
            spin_lock(a)  # leaked: still held when the call returns
        with h.hvc("d0v0", abi.FFA_RXTX_UNMAP):
            spin_lock(b)
            spin_unlock(b)
    assert _found(h) == []


def test_lock_order_same_inversion_among_spmc_locks_outside_a_known_call_is_a_finding() -> None:
    h = Harness(LockOrderMonitor())
    m = h.machine
    vm0, stage1 = m.spinlock("spmc.vm0.lock"), m.spinlock("spmc.mm_stage1_lock")
    with h.thread("d0v0"):
        _nest(vm0, stage1)
        h.call("smc", "xen", abi.regs(abi.FFA_MEM_SHARE_64))
        _nest(stage1, vm0)
        h.ret("smc", "xen", abi.success())
    assert _found(h) == ["lock-order"]
