"""lock-leak, the rules the first tests leave out: a lock a vCPU context takes outside any
hypercall is reported as such when the context next enters one (whether that call keeps the
lock or releases it), and never as the call's own leak; a lock that a call leaks is reported
once, as that call's."""

from __future__ import annotations

from test_mon_execution import Scripted, run
from test_monitors import Harness

from ffasim import abi
from ffasim.check.monitors import LockLeakMonitor
from ffasim.machine import (
    Machine,
    Thread,
    read_lock,
    read_unlock,
    spin_lock,
    spin_unlock,
    write_lock,
    write_unlock,
)


def test_lock_leak_lock_taken_outside_a_hypercall_is_reported_as_such() -> None:
    h = Harness(LockLeakMonitor())
    lock = h.machine.spinlock("d0.ffa.lock")
    with h.thread("d0v0"):
        spin_lock(lock)  # step 1, no hypercall in progress
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_VERSION):
        pass
    h.end("d0v0")
    assert [f.message for f in h.findings] == [
        "d0v0 enters FFA_VERSION holding d0.ffa.lock, taken outside any hypercall (step 1)"
    ]
    assert h.findings[0].threads == ("d0v0",)
    assert h.findings[0].calls == ()  # the call it enters did not take the lock


def test_lock_leak_lock_taken_outside_and_released_by_the_next_call_is_reported() -> None:
    h = Harness(LockLeakMonitor())
    lock = h.machine.spinlock("d0.ffa.lock")
    with h.thread("d0v0"):
        spin_lock(lock)
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_RX_RELEASE):
        spin_unlock(lock)
    h.end("d0v0")
    assert [f.message for f in h.findings] == [
        "d0v0 enters FFA_RX_RELEASE holding d0.ffa.lock, taken outside any hypercall (step 1)"
    ]


def test_lock_leak_read_lock_taken_outside_a_hypercall_is_reported() -> None:
    h = Harness(LockLeakMonitor())
    lock = h.machine.rwlock("ffa_ctx_list_rwlock")
    with h.thread("d0v0"):
        read_lock(lock)
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_VERSION):
        read_unlock(lock)
    assert [f.message for f in h.findings] == [
        "d0v0 enters FFA_VERSION holding ffa_ctx_list_rwlock, taken outside any hypercall (step 1)"
    ]


def test_lock_leak_lock_taken_and_released_outside_a_hypercall_is_clean() -> None:
    h = Harness(LockLeakMonitor())
    lock = h.machine.spinlock("d0.ffa.lock")
    with h.thread("d0v0"):
        spin_lock(lock)
        spin_unlock(lock)
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_VERSION):
        spin_lock(lock)
        spin_unlock(lock)
    h.end("d0v0")
    assert h.findings == []


def test_lock_leak_another_context_holding_a_lock_from_outside_is_not_this_calls() -> None:
    h = Harness(LockLeakMonitor())
    lock = h.machine.spinlock("d1.ffa.lock")
    with h.thread("d1v0"):
        spin_lock(lock)
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_VERSION):
        pass
    h.end("d0v0")
    assert h.findings == []
    h.end("d1v0")
    assert [f.message for f in h.findings] == ["d1v0 ends still holding d1.ffa.lock"]


def test_lock_leak_lock_leaked_by_a_call_is_that_calls_only() -> None:
    # The leak is the first call's: the second call entering with the lock held is not
    # reported again as a lock taken outside a hypercall, nor is the thread's end.
    h = Harness(LockLeakMonitor())
    lock = h.machine.spinlock("ffa_spmc_rx_lock")
    with h.thread("d0v0"):
        with h.hvc("d0v0", abi.FFA_PARTITION_INFO_GET, abi.error(abi.FFA_RET_DENIED)):
            spin_lock(lock)
        with h.hvc("d0v0", abi.FFA_VERSION):
            pass
    h.end("d0v0")
    assert [f.message for f in h.findings] == [
        "d0v0 returns from FFA_PARTITION_INFO_GET (FFA_ERROR(DENIED)) still holding "
        "ffa_spmc_rx_lock"
    ]


def test_lock_leak_lock_taken_outside_then_retaken_by_the_call_is_reported_once() -> None:
    h = Harness(LockLeakMonitor())
    lock = h.machine.spinlock("d0.ffa.lock")
    with h.thread("d0v0"):
        spin_lock(lock)
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_RX_ACQUIRE):
        spin_unlock(lock)
        spin_lock(lock)
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_VERSION):
        pass
    h.end("d0v0")
    assert [f.message for f in h.findings] == [
        "d0v0 enters FFA_RX_ACQUIRE holding d0.ffa.lock, taken outside any hypercall (step 1)"
    ]


def outside_program(release_inside: bool) -> object:
    """One vCPU takes a lock in its own code, then makes a call that keeps it or releases it."""

    def program(machine: Machine) -> tuple[list[Thread], None]:
        lock = machine.spinlock("d0.ffa.lock")

        def body() -> None:
            spin_lock(lock)
            machine.sink.call("hvc", "d0v0", abi.regs(abi.FFA_VERSION))
            if release_inside:
                spin_unlock(lock)
            machine.sink.ret("hvc", "d0v0", abi.regs(abi.FFA_VERSION_1_2))

        return [Thread("d0v0", body)], None

    return program


def test_lock_leak_taken_outside_under_the_real_scheduler() -> None:
    for release_inside in (False, True):
        r = run(outside_program(release_inside), Scripted())  # type: ignore[arg-type]
        # The scheduler names the call in progress when the finding is made (the one the
        # context enters); the message says where the lock was taken.
        assert [(f.kind, f.message, f.calls) for f in r.findings] == [
            (
                "lock-leak",
                "d0v0 enters FFA_VERSION holding d0.ffa.lock, taken outside any hypercall (step 1)",
                ("d0v0 FFA_VERSION",),
            )
        ], release_inside


def test_lock_leak_readers_of_one_rwlock_are_told_apart() -> None:
    # d0v0 reads under the lock inside its call; d1v0 took it outside and still holds it.
    h = Harness(LockLeakMonitor())
    lock = h.machine.rwlock("ffa_ctx_list_rwlock")
    with h.thread("d1v0"):
        read_lock(lock)
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_VERSION):
        read_lock(lock)
        read_unlock(lock)
    with h.thread("d1v0"), h.hvc("d1v0", abi.FFA_VERSION):
        pass
    assert [f.message for f in h.findings] == [
        "d1v0 enters FFA_VERSION holding ffa_ctx_list_rwlock, taken outside any hypercall (step 1)"
    ]


def test_lock_leak_lock_the_setup_leaves_held_is_reported_when_threads_start() -> None:
    h = Harness(LockLeakMonitor())
    lock = h.machine.spinlock("ffa_ctx_list_rwlock")
    spare = h.machine.spinlock("d0.ffa.lock")
    h.machine.current = "toolstack"  # a setup step, before any thread
    spin_lock(lock)
    spin_lock(spare)
    spin_unlock(spare)
    h.machine.current = "boot"
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_VERSION):
        pass
    with h.thread("d1v0"):
        pass
    h.end("d0v0")
    assert [(f.message, f.threads, f.calls) for f in h.findings] == [
        (
            "toolstack still holds ffa_ctx_list_rwlock when the threads start: taken during "
            "the setup, outside any hypercall",
            ("toolstack",),
            (),
        )
    ]


def test_lock_leak_setup_that_releases_its_locks_is_clean() -> None:
    h = Harness(LockLeakMonitor())
    lock = h.machine.rwlock("ffa_ctx_list_rwlock")
    h.machine.current = "toolstack"
    write_lock(lock)
    write_unlock(lock)
    h.machine.current = "boot"
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_VERSION):
        pass
    h.end("d0v0")
    assert h.findings == []


def setup_leak_program(machine: Machine) -> tuple[list[Thread], None]:
    """The toolstack leaves a lock held during the setup; a vCPU's call then waits for it."""
    lock = machine.spinlock("ffa_ctx_list_rwlock")
    machine.current = "toolstack"
    spin_lock(lock)
    machine.current = "boot"

    def body() -> None:
        machine.sink.call("hvc", "d0v0", abi.regs(abi.FFA_PARTITION_INFO_GET))
        spin_lock(lock)
        spin_unlock(lock)
        machine.sink.ret("hvc", "d0v0", abi.success())

    return [Thread("d0v0", body), Thread("d1v0", lambda: None)], None


def test_lock_leak_setup_leak_is_found_before_the_call_that_waits_for_it() -> None:
    r = run(setup_leak_program, Scripted())
    assert [(f.kind, f.message, f.calls) for f in r.findings] == [
        (
            "lock-leak",
            "toolstack still holds ffa_ctx_list_rwlock when the threads start: taken during "
            "the setup, outside any hypercall",
            (),
        )
    ]
