"""The rules of the isolation, leak, violation and ownership monitors that ``test_monitors.py``
checks on one side only: each gets the other side here (a near miss that must stay silent, or
the planted breach with its exact message), at the boundary of the rule."""

from __future__ import annotations

from typing import Any

from test_monitors import Harness, _Mailbox, _Spmc, guest_frame, xen_frame

from ffasim import abi
from ffasim.check.monitors import (
    IsolationMonitor,
    LeakMonitor,
    OwnershipMonitor,
    RaceMonitor,
    ViolationMonitor,
)
from ffasim.machine import Frame, grant, revoke, spin_lock, spin_unlock

# -- isolation: accesses ------------------------------------------------------------------------


def secure_frame(h: Harness, owner: str = "sp8001") -> Frame:
    f = h.machine.secure_heap.alloc_page(owner, tag="sp")
    assert f is not None and f.secure
    return f


def test_isolation_owner_grantee_and_xen_on_normal_memory_are_clean() -> None:
    h = Harness(IsolationMonitor())
    ram = guest_frame(h)
    grant(ram, "sp8002")
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_MEM_SHARE_64):
        h.machine.mem.read(ram.pa, 8, "d0")  # its owner
        h.machine.mem.write(ram.pa, b"x", "sp8002")  # given to it
        h.machine.mem.read(ram.pa, 8, "xen")  # Xen maps all normal-world RAM
    assert h.findings == []


def test_isolation_access_after_the_last_grant_is_revoked_is_reported() -> None:
    h = Harness(IsolationMonitor())
    ram = guest_frame(h)
    grant(ram, "sp8002")
    grant(ram, "sp8002")
    revoke(ram, "sp8002")
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_MSG_SEND_DIRECT_REQ_32):
        h.machine.mem.read(ram.pa, 8, "sp8002")  # one grant left: still allowed
        assert h.findings == []
        revoke(ram, "sp8002")
        h.machine.mem.write(ram.pa + 0x10, b"abcd", "sp8002")
        h.machine.mem.write(ram.pa, b"abcd", "sp8002")  # same party and frame: once
    assert [(f.kind, f.message, f.calls) for f in h.findings] == [
        (
            "isolation",
            f"sp8002 writes bytes 0x10..0x13 of frame 0x{ram.mfn:x} (d0, ram): a frame it "
            "neither owns nor was given (d0v0 in FFA_MSG_SEND_DIRECT_REQ_32)",
            ("d0v0 FFA_MSG_SEND_DIRECT_REQ_32",),
        )
    ]


def test_isolation_xen_touching_secure_memory_is_reported() -> None:
    h = Harness(IsolationMonitor())
    sp = secure_frame(h)
    with h.thread("d0v0"):
        h.machine.mem.read(sp.pa, 4, "sp8001")  # its owner
        h.machine.mem.read(sp.pa, 4, "xen")
    assert [f.message for f in h.findings] == [
        f"xen reads bytes 0x0..0x3 of frame 0x{sp.mfn:x} (sp8001, sp): a frame it neither "
        "owns nor was given (d0v0)"
    ]


def test_isolation_xen_touching_a_free_frame_is_reported() -> None:
    h = Harness(IsolationMonitor())
    f = xen_frame(h)
    h.machine.heap.free_page(f)
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_RXTX_UNMAP):
        h.machine.mem.write(f.pa, b"\0", "xen")
    assert [f.message for f in h.findings] == [
        f"xen writes bytes 0x0..0x0 of frame 0x{f.mfn:x} (free): a free frame "
        "(d0v0 in FFA_RXTX_UNMAP)"
    ]


# -- isolation: frees ----------------------------------------------------------------------------


def test_isolation_free_of_a_frame_granted_only_to_its_owner_is_clean() -> None:
    h = Harness(IsolationMonitor())
    f = xen_frame(h)
    grant(f, "xen")
    h.machine.heap.free_page(f)
    assert h.findings == []


def test_isolation_free_of_a_frame_two_parties_map_names_both() -> None:
    h = Harness(IsolationMonitor())
    f = guest_frame(h)
    grant(f, "sp8002")
    grant(f, "spmc")
    with h.thread("toolstack"):
        h.machine.heap.free_page(f)
    assert [f.message for f in h.findings] == [
        f"frame 0x{f.mfn:x} (d0, ram) freed by toolstack while sp8002, spmc still map it"
    ]


# -- leak --------------------------------------------------------------------------------------


def test_leak_released_locks_and_revoked_grants_leave_nothing() -> None:
    h = Harness(LeakMonitor())
    lock = h.machine.spinlock("ffa_ctx_list_rwlock")
    f = xen_frame(h, "ffa_spmc_rx")
    grant(f, "spmc")
    with h.thread("d0v0"):
        spin_lock(lock)
        spin_unlock(lock)
    revoke(f, "spmc")  # a zero count stays in the counter: not a mapping
    h.machine.heap.free_page(f)
    h.finish()
    assert h.findings == []


def test_leak_granted_frame_still_allocated_is_not_a_leak() -> None:
    # A frame that is still somebody's may be mapped by others: the owner frees it later (or
    # the teardown's own leak lines say so). Only a free frame's mapping outlived its page.
    h = Harness(LeakMonitor())
    f = xen_frame(h, "ffa_spmc_rx")
    grant(f, "spmc")
    h.finish()
    assert h.findings == []


def test_leak_free_frame_mapped_by_two_parties_names_both() -> None:
    h = Harness(LeakMonitor())
    f = guest_frame(h)
    grant(f, "spmc")
    grant(f, "sp8001")
    h.machine.heap.free_page(f)
    h.finish()
    assert [f.message for f in h.findings] == [
        f"frame 0x{f.mfn:x} (free) is free but still mapped by sp8001, spmc"
    ]


# -- violations ----------------------------------------------------------------------------------


def test_violation_monitor_leaves_ownership_to_the_ownership_monitor() -> None:
    h = Harness(ViolationMonitor())
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_RX_RELEASE):
        h.violation("ownership", "FFA_RX_RELEASE from the hypervisor: RX buffer is EMPTY")
    assert h.findings == []
    h = Harness(OwnershipMonitor())
    h.violation("isolation", "sp8002 retrieves a handle it was not given")
    assert h.findings == []


def test_violation_names_the_context_and_its_call() -> None:
    h = Harness(ViolationMonitor())
    with h.thread("d1v0"), h.hvc("d1v0", abi.FFA_MEM_RETRIEVE_REQ_64):
        h.violation("leak", "share state 3 has no borrower left")
    assert [(f.kind, f.threads, f.calls) for f in h.findings] == [
        ("leak", ("d1v0",), ("d1v0 FFA_MEM_RETRIEVE_REQ_64",))
    ]


# -- ownership -----------------------------------------------------------------------------------


def _with_spmc(h: Harness, **mailboxes: tuple[Frame, str]) -> _Spmc:
    spmc = _Spmc()
    for key, (frame, state) in mailboxes.items():
        spmc.mailboxes[int(key[1:])] = _Mailbox(frame, state)
    h.machine.spmc = spmc  # type: ignore[attr-defined]
    return spmc


def test_ownership_without_an_spmc_judges_no_access() -> None:
    h = Harness(OwnershipMonitor())
    rx = xen_frame(h, "ffa_spmc_rx")
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_PARTITION_INFO_GET):
        h.machine.mem.read(rx.pa, 8, "xen")
    assert h.findings == []


def test_ownership_only_xen_reading_its_own_rx_frame_is_judged() -> None:
    h = Harness(OwnershipMonitor())
    rx = xen_frame(h, "ffa_spmc_rx")
    other = xen_frame(h, "ffa_spmc_tx")
    _with_spmc(h, e0=(rx, "EMPTY"))
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_PARTITION_INFO_GET):
        h.machine.mem.read(other.pa, 8, "xen")  # not the RX buffer
        h.machine.mem.read(rx.pa, 8, "spmc")  # not Xen
        h.machine.mem.write(rx.pa, b"\0", "xen")  # writes to Xen's own RX are not this rule
    assert h.findings == []
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_PARTITION_INFO_GET):
        h.machine.mem.read(rx.pa + 8, 8, "xen")
        h.machine.mem.read(rx.pa, 8, "xen")  # once per context and frame
    assert [f.message for f in h.findings] == [
        "xen reads its RX buffer while the SPMC holds it EMPTY, not FULL "
        f"(bytes 0x8..0xf of frame 0x{rx.mfn:x} (xen, ffa_spmc_rx), d0v0 in "
        "FFA_PARTITION_INFO_GET)"
    ]


def test_ownership_vm_rx_write_after_acquire_is_judged_only_for_that_vm() -> None:
    h = Harness(OwnershipMonitor())
    rx1, rx2 = guest_frame(h, 0), guest_frame(h, 1)
    _with_spmc(h, e1=(rx1, "EMPTY"), e2=(rx2, "EMPTY"))
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_MSG_SEND2):
        h.call("smc", "xen", abi.regs(abi.FFA_RX_ACQUIRE, 1))
        h.ret("smc", "xen", abi.success())
        h.machine.mem.write(rx2.pa, b"\0" * 8, "xen")  # VM 2 never acquired: not judged
        assert h.findings == []
        h.machine.mem.read(rx1.pa, 8, "xen")  # reads of a VM's RX are not this rule
        assert h.findings == []
        h.machine.mem.write(rx1.pa, b"\0" * 8, "xen")
    assert [f.message for f in h.findings] == [
        "xen writes VM 0x1's RX buffer while the SPMC holds it EMPTY, not OTHER_WORLD_OWNED "
        f"(no FFA_RX_ACQUIRE in force) (bytes 0x0..0x7 of frame 0x{rx1.mfn:x} (d0, ram), "
        "d0v0 in FFA_MSG_SEND2)"
    ]


# -- data-race: byte ranges ------------------------------------------------------------------


def _unordered_writes(first: tuple[int, int], second: tuple[int, int], write: bool = True) -> Any:
    """The racing spans found when d0v0 writes bytes [a, b) of a Xen frame and d1v0 then
    touches [c, d), with nothing ordering them."""
    h = Harness(RaceMonitor())
    f = xen_frame(h, "ffa_spmc_tx")
    (a, b), (c, d) = first, second
    with h.thread("d0v0"):
        h.machine.mem.write(f.pa + a, bytes(b - a), "xen")
    with h.thread("d1v0"):
        if write:
            h.machine.mem.write(f.pa + c, bytes(d - c), "spmc")
        else:
            h.machine.mem.read(f.pa + c, d - c, "spmc")
    return [x.message.split(" of frame")[0] for x in h.findings]


def test_race_adjacent_byte_ranges_do_not_race() -> None:
    assert _unordered_writes((8, 16), (16, 24)) == []
    assert _unordered_writes((8, 16), (0, 8)) == []


def test_race_byte_ranges_sharing_one_byte_race_on_that_byte() -> None:
    assert _unordered_writes((8, 16), (15, 24)) == ["bytes 0xf..0xf"]
    assert _unordered_writes((8, 16), (0, 9), write=False) == ["bytes 0x8..0x8"]


def test_race_two_unordered_reads_do_not_race() -> None:
    h = Harness(RaceMonitor())
    f = xen_frame(h)
    for t in ("d0v0", "d1v0"):
        with h.thread(t):
            h.machine.mem.read(f.pa, 8, "xen")
    assert h.findings == []
