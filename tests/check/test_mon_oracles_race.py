"""data-race, lockset rule: a guarded field's discipline is judged even where this schedule
happened to order the accesses."""

from __future__ import annotations

from test_monitors import Harness

from ffasim import abi
from ffasim.check.monitors import RaceMonitor
from ffasim.machine import Atomic, Guarded, spin_lock, spin_unlock


def _setup() -> tuple[Harness, Guarded[int], Atomic]:
    h = Harness(RaceMonitor())
    guard = h.machine.spinlock("d0.ffa.lock")
    field: Guarded[int] = Guarded(h.machine, "d0.ffa.shm_count", 0, guard)
    return h, field, Atomic(h.machine, "flag")


def _locked_read(h: Harness, field: Guarded[int]) -> None:
    assert field.guard is not None
    spin_lock(field.guard)  # type: ignore[arg-type]
    field.get()
    spin_unlock(field.guard)  # type: ignore[arg-type]


def test_lockset_unguarded_write_ordered_by_an_atomic_is_reported() -> None:
    h, field, flag = _setup()
    with h.thread("d0v0"):
        field.set(1)  # without d0.ffa.lock
        flag.set(1)  # publishes: happens-before alone sees no race
    with h.thread("d0v1"):
        flag.read()
        _locked_read(h, field)
    assert h.kinds() == ["data-race"]
    msg = h.findings[0].message
    assert "write by d0v0 without it" in msg and "read by d0v1 holding it" in msg
    assert "lockset" in msg


def test_lockset_guarded_accesses_are_clean() -> None:
    h, field, flag = _setup()
    with h.thread("d0v0"):
        spin_lock(field.guard)  # type: ignore[arg-type]
        field.set(1)
        spin_unlock(field.guard)  # type: ignore[arg-type]
        flag.set(1)
    with h.thread("d0v1"):
        flag.read()
        _locked_read(h, field)
    assert h.findings == []


def test_lockset_one_thread_alone_is_not_a_race() -> None:
    h, field, _ = _setup()
    with h.thread("d0v0"):
        field.set(1)
        field.get()
    assert h.findings == []


def test_lockset_unguarded_reads_only_are_not_a_race() -> None:
    h, field, flag = _setup()
    with h.thread("d0v0"):
        field.get()
        flag.set(1)
    with h.thread("d0v1"):
        flag.read()
        field.get()
    assert h.findings == []


def test_lockset_another_common_lock_protects() -> None:
    # Both threads hold some lock other than the declared guard at every access: the declared
    # guard is not held, but nothing can interleave them (happens-before agrees: no race).
    h, field, _ = _setup()
    other = h.machine.spinlock("ffa_ctx_list_lock")
    for t in ("d0v0", "d0v1"):
        with h.thread(t):
            spin_lock(other)
            field.set(1)
            spin_unlock(other)
    assert h.findings == []


def test_lockset_unordered_race_is_reported_once() -> None:
    h, field, _ = _setup()
    with h.thread("d0v0"):
        field.set(1)
    with h.thread("d0v1"):
        field.set(2)
    assert h.kinds() == ["data-race"]
    assert "lockset" not in h.findings[0].message  # happens-before saw it first


def test_lockset_off_is_happens_before_alone() -> None:
    h = Harness(RaceMonitor(lockset=False))
    field: Guarded[int] = Guarded(h.machine, "x", 0, h.machine.spinlock("l"))
    flag = Atomic(h.machine, "flag")
    with h.thread("d0v0"):
        field.set(1)
        flag.set(1)
    with h.thread("d0v1"):
        flag.read()
        field.get()
    assert h.findings == []


def test_a_partition_on_a_guests_page_acts_for_the_guest() -> None:
    """A partition writing a page a guest shared with it (its TX buffer, say) while Xen reads
    it is the guest's doing, as a racing vCPU's write would be: not a data race."""

    def race(owner: str) -> list[str]:
        h = Harness(RaceMonitor())
        frame = h.machine.heap.alloc_page(owner, tag="page")
        assert frame is not None
        with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_MEM_SHARE_64):
            h.mem_access("xen", frame, 0, 8, False)
        with h.thread("d0v1"), h.hvc("d0v1", abi.FFA_MSG_SEND_DIRECT_REQ_32):
            h.mem_access("sp8002", frame, 0, 8, True)
        return h.kinds()

    assert race("d0") == []
    assert race("xen") == ["data-race"]  # Xen's own page: the partition has no business there
