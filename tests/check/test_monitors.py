"""Each monitor on small hand-built situations: a bare Machine, locks and memory, driven by a
sequential stand-in for the scheduler (so these tests do not depend on the mediator)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ffasim import abi
from ffasim.check.monitor import Finding, Monitor
from ffasim.check.monitors import (
    DoubleFetchMonitor,
    IsolationMonitor,
    LeakMonitor,
    LockLeakMonitor,
    OwnershipMonitor,
    RaceMonitor,
    ViolationMonitor,
    default_monitors,
)
from ffasim.machine import (
    Atomic,
    EventSink,
    Frame,
    Guarded,
    Machine,
    grant,
    spin_lock,
    spin_unlock,
)


class Harness(EventSink):
    """Stands in for the scheduler: the machine's sink, fanning events out to monitors, with
    the interleaving written out by the test (``with h.thread("d0v0"): ...``)."""

    def __init__(self, *monitors: Monitor) -> None:
        self.machine = Machine(self)
        self.current_thread = "boot"
        self.step = 0
        self.trace: list[Any] = []
        self.findings: list[Finding] = []
        self.problems: list[str] = []
        self.faults: list[tuple[int, str, int]] = []
        self.monitors = monitors
        self.started: set[str] = set()
        for m in monitors:
            m.attach(self)

    def add_finding(
        self, kind: str, message: str, threads: tuple[str, ...] = (), calls: tuple[str, ...] = ()
    ) -> None:
        self.findings.append(Finding(kind, message, threads, calls, self.step))

    def _each(self, name: str, *args: Any) -> None:
        for m in self.monitors:
            getattr(m, name)(*args)

    def point(self, kind: str, key: object, write: bool) -> None:
        self.step += 1
        self._each("on_step", self.current_thread, kind, key, write)

    def acquired(self, lock: Any) -> None:
        self._each("acquired", lock)

    def released(self, lock: Any) -> None:
        self._each("released", lock)

    def mem_access(self, party: str, frame: Frame, offset: int, size: int, write: bool) -> None:
        self._each("mem_access", party, frame, offset, size, write)

    def page_alloc(self, frame: Frame) -> None:
        self._each("page_alloc", frame)

    def page_free(self, frame: Frame) -> None:
        self._each("page_free", frame)

    def guarded_access(self, field: Any, write: bool) -> None:
        self._each("guarded_access", field, write)

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        self._each("call", layer, caller, args)

    def ret(self, layer: str, caller: str, result: tuple[int, ...]) -> None:
        self._each("ret", layer, caller, result)

    def violation(self, kind: str, message: str) -> None:
        self._each("violation", kind, message)

    @contextmanager
    def thread(self, name: str) -> Iterator[None]:
        """Run the block as thread ``name`` (started on first use)."""
        if name not in self.started:
            self.started.add(name)
            self._each("on_thread_start", name)
        self.current_thread = self.machine.current = name
        yield
        self.current_thread = self.machine.current = "boot"

    def end(self, name: str) -> None:
        self._each("on_thread_end", name)

    def finish(self) -> None:
        self.machine.current = "toolstack"
        self._each("on_finish")

    @contextmanager
    def hvc(self, ctx: str, fid: int, result: tuple[int, ...] | None = None) -> Iterator[None]:
        self.call("hvc", ctx, abi.regs(fid))
        yield
        self.ret("hvc", ctx, result if result is not None else abi.success())

    def kinds(self) -> list[str]:
        return [f.kind for f in self.findings]


def guest_frame(h: Harness, domid: int = 0) -> Frame:
    frames = h.machine.heap.alloc_contiguous(1, f"d{domid}", tag="ram")
    assert frames is not None
    return frames[0]


def xen_frame(h: Harness, tag: str = "") -> Frame:
    f = h.machine.heap.alloc_page("xen", tag=tag)
    assert f is not None
    return f


# -- lock-leak --------------------------------------------------------------------------------


def test_lock_leak_lock_held_when_hypercall_returns_is_reported() -> None:
    h = Harness(LockLeakMonitor())
    lock = h.machine.spinlock("ffa_spmc_rx_lock")
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_PARTITION_INFO_GET, abi.error(-6)):
        spin_lock(lock)
    assert h.kinds() == ["lock-leak"]
    f = h.findings[0]
    assert f.message == (
        "d0v0 returns from FFA_PARTITION_INFO_GET (FFA_ERROR(DENIED)) still holding "
        "ffa_spmc_rx_lock"
    )
    assert f.threads == ("d0v0",)
    assert f.calls == ("d0v0 FFA_PARTITION_INFO_GET",)


def test_lock_leak_balanced_hypercall_is_clean() -> None:
    h = Harness(LockLeakMonitor())
    lock = h.machine.spinlock("rx_lock")
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_RX_RELEASE):
        spin_lock(lock)
        spin_unlock(lock)
    h.end("d0v0")
    assert h.findings == []


def test_lock_leak_other_context_holding_a_lock_is_not_blamed_on_this_call() -> None:
    h = Harness(LockLeakMonitor())
    lock = h.machine.spinlock("tx_lock")
    with h.thread("d1v0"):
        spin_lock(lock)
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_VERSION):
        pass
    assert h.findings == []


def test_lock_leak_lock_held_at_thread_end_is_reported_once() -> None:
    h = Harness(LockLeakMonitor())
    lock = h.machine.spinlock("ffa_spmc_tx_lock")
    with h.thread("sri"):
        spin_lock(lock)
    h.end("sri")
    h.end("sri")
    assert [f.message for f in h.findings] == ["sri ends still holding ffa_spmc_tx_lock"]


# -- isolation --------------------------------------------------------------------------------


def test_isolation_free_of_frame_still_mapped_by_spmc_is_reported() -> None:
    h = Harness(IsolationMonitor())
    f = xen_frame(h, "ffa_spmc_rx")
    grant(f, "spmc")
    with h.thread("boot"):
        h.machine.heap.free_page(f)
    assert h.kinds() == ["isolation"]
    assert h.findings[0].message == (
        f"frame 0x{f.mfn:x} (xen, ffa_spmc_rx) freed by boot while spmc still maps it"
    )


def test_isolation_free_after_revoke_is_clean() -> None:
    h = Harness(IsolationMonitor())
    f = xen_frame(h)
    grant(f, "spmc")
    f.grants["spmc"] -= 1
    h.machine.heap.free_page(f)
    assert h.findings == []


def test_isolation_access_to_free_frame_is_reported() -> None:
    h = Harness(IsolationMonitor())
    f = xen_frame(h)
    h.machine.heap.free_page(f)
    h.machine.mem.read(f.pa + 8, 4, "spmc")
    assert h.kinds() == ["isolation"]
    assert h.findings[0].message.startswith(
        f"spmc reads bytes 0x8..0xb of frame 0x{f.mfn:x} (free): a free frame"
    )


def test_isolation_partition_reading_guest_page_it_was_not_given_is_reported() -> None:
    h = Harness(IsolationMonitor())
    f = guest_frame(h)
    h.machine.mem.read(f.pa, 16, "sp8002")
    grant(f, "sp8001")
    h.machine.mem.write(f.pa, b"x", "sp8001")
    h.machine.mem.write(f.pa, b"x", "xen")
    assert h.kinds() == ["isolation"]
    assert "sp8002 reads bytes 0x0..0xf" in h.findings[0].message


# -- double-fetch -----------------------------------------------------------------------------


def test_double_fetch_overlapping_reread_of_guest_memory_is_reported() -> None:
    h = Harness(DoubleFetchMonitor())
    tx = guest_frame(h)
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_MEM_SHARE_64):
        h.machine.mem.read(tx.pa, 48, "xen")
        h.machine.mem.read(tx.pa + 0x20, 4, "xen")
    assert h.kinds() == ["double-fetch"]
    f = h.findings[0]
    assert f.calls == ("d0v0 FFA_MEM_SHARE_64",)
    assert f.message.startswith(
        f"xen reads bytes 0x20..0x23 of guest-writable frame 0x{tx.mfn:x} (d0, ram) twice "
        "in d0v0's FFA_MEM_SHARE_64"
    )


def test_double_fetch_disjoint_reads_and_reads_in_separate_calls_are_clean() -> None:
    h = Harness(DoubleFetchMonitor())
    tx = guest_frame(h)
    with h.thread("d0v0"):
        with h.hvc("d0v0", abi.FFA_MEM_SHARE_64):
            h.machine.mem.read(tx.pa, 16, "xen")
            h.machine.mem.read(tx.pa + 16, 16, "xen")
        with h.hvc("d0v0", abi.FFA_MEM_SHARE_64):
            h.machine.mem.read(tx.pa, 16, "xen")
    assert h.findings == []


def test_double_fetch_reading_back_what_xen_wrote_is_clean() -> None:
    h = Harness(DoubleFetchMonitor())
    rx = guest_frame(h)
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_PARTITION_INFO_GET):
        h.machine.mem.read(rx.pa, 8, "xen")
        h.machine.mem.write(rx.pa, b"\0" * 8, "xen")
        h.machine.mem.read(rx.pa, 8, "xen")
    assert h.findings == []


def test_double_fetch_ignores_xen_own_memory_and_guest_reads() -> None:
    h = Harness(DoubleFetchMonitor())
    buf = xen_frame(h)
    ram = guest_frame(h)
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_PARTITION_INFO_GET):
        h.machine.mem.read(buf.pa, 8, "xen")
        h.machine.mem.read(buf.pa, 8, "xen")
        h.machine.mem.read(ram.pa, 8, "d0")
        h.machine.mem.read(ram.pa, 8, "d0")
    assert h.findings == []


# -- data-race --------------------------------------------------------------------------------


def test_race_guarded_field_written_without_its_lock_is_reported() -> None:
    h = Harness(RaceMonitor())
    lock = h.machine.spinlock("ctx->lock")
    field = Guarded(h.machine, "ctx->shm_count", 0, guard=lock)
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_MEM_SHARE_64):
        spin_lock(lock)
        field.set(1)
        spin_unlock(lock)
    with h.thread("d0v1"), h.hvc("d0v1", abi.FFA_MEM_RECLAIM):
        field.set(0)
    assert h.kinds() == ["data-race"]
    f = h.findings[0]
    assert f.message == (
        "ctx->shm_count (guarded by ctx->lock): write by d0v1 in FFA_MEM_RECLAIM races with "
        "write by d0v0 in FFA_MEM_SHARE_64; d0v1 did not hold it"
    )
    assert f.threads == ("d0v0", "d0v1")
    assert f.calls == ("d0v0 FFA_MEM_SHARE_64", "d0v1 FFA_MEM_RECLAIM")


def test_race_guarded_field_under_its_lock_is_clean() -> None:
    h = Harness(RaceMonitor())
    lock = h.machine.spinlock("ctx->lock")
    field = Guarded(h.machine, "ctx->shm_count", 0, guard=lock)
    for t in ("d0v0", "d0v1", "d0v0"):
        with h.thread(t):
            spin_lock(lock)
            field.set(field.get() + 1)
            spin_unlock(lock)
    assert h.findings == []


def test_race_atomic_orders_a_publication() -> None:
    h = Harness(RaceMonitor())
    flag = Atomic(h.machine, "ready")
    field = Guarded(h.machine, "fw_version", 0)
    with h.thread("d0v0"):
        field.set(0x10002)
        flag.set(1)
    with h.thread("d1v0"):
        assert flag.read() == 1
        field.get()
    assert h.findings == []


def test_race_unordered_read_of_published_field_is_reported() -> None:
    h = Harness(RaceMonitor())
    field = Guarded(h.machine, "fw_version", 0)
    with h.thread("d0v0"):
        field.set(0x10002)
    with h.thread("d1v0"):
        field.get()
    assert h.findings[0].message == (
        "fw_version (published once, read without a lock): read by d1v0 races with write by d0v0"
    )


def test_race_shared_buffer_write_without_lock_is_reported_with_both_accesses() -> None:
    h = Harness(RaceMonitor())
    lock = h.machine.spinlock("ffa_spmc_tx_lock")
    tx = xen_frame(h, "ffa_spmc_tx")
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_MEM_SHARE_64):
        spin_lock(lock)
        h.machine.mem.write(tx.pa, b"\1" * 32, "xen")
        spin_unlock(lock)
    with h.thread("d1v0"), h.hvc("d1v0", abi.FFA_RXTX_MAP_64):
        h.machine.mem.write(tx.pa + 16, b"\2" * 4, "xen")
    assert h.kinds() == ["data-race"]
    assert h.findings[0].message == (
        f"bytes 0x10..0x13 of frame 0x{tx.mfn:x} (xen, ffa_spmc_tx): xen write by d1v0 in "
        "FFA_RXTX_MAP_64 races with xen write by d0v0 in FFA_MEM_SHARE_64 (no lock or atomic "
        "orders them)"
    )


def test_race_shared_buffer_under_lock_and_guest_accesses_are_clean() -> None:
    h = Harness(RaceMonitor())
    lock = h.machine.spinlock("ffa_spmc_tx_lock")
    tx = xen_frame(h)
    ram = guest_frame(h)
    for t in ("d0v0", "d1v0"):
        with h.thread(t):
            spin_lock(lock)
            h.machine.mem.write(tx.pa, b"\1" * 32, "xen")
            spin_unlock(lock)
            h.machine.mem.write(ram.pa, b"\1", "d0")
    assert h.findings == []


def test_race_boot_accesses_before_threads_are_ordered() -> None:
    h = Harness(RaceMonitor())
    buf = xen_frame(h)
    h.machine.mem.write(buf.pa, b"\1" * 8, "xen")  # boot, single-threaded
    with h.thread("d0v0"):
        h.machine.mem.read(buf.pa, 8, "xen")
    assert h.findings == []


# -- ownership --------------------------------------------------------------------------------


class _Mailbox:
    def __init__(self, rx: Frame, state: str) -> None:
        self.rx_frames = [rx]
        self.tx_frames: list[Frame] = []
        self.state = type("S", (), {"name": state})()


class _Spmc:
    def __init__(self) -> None:
        self.mailboxes: dict[int, _Mailbox] = {}


def test_ownership_spmc_violation_is_reported_with_the_call() -> None:
    h = Harness(OwnershipMonitor())
    with h.thread("d1v0"), h.hvc("d1v0", abi.FFA_PARTITION_INFO_GET):
        h.violation("ownership", "FFA_RX_RELEASE from the hypervisor: RX buffer is EMPTY")
    assert h.findings == [
        Finding(
            "ownership",
            "FFA_RX_RELEASE from the hypervisor: RX buffer is EMPTY",
            ("d1v0",),
            ("d1v0 FFA_PARTITION_INFO_GET",),
            0,
        )
    ]


def test_ownership_xen_reading_its_rx_while_not_full_is_reported() -> None:
    h = Harness(OwnershipMonitor())
    rx = xen_frame(h, "ffa_spmc_rx")
    spmc = _Spmc()
    spmc.mailboxes[0] = _Mailbox(rx, "EMPTY")
    h.machine.spmc = spmc  # type: ignore[attr-defined]
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_PARTITION_INFO_GET):
        h.machine.mem.read(rx.pa, 24, "xen")
    assert h.kinds() == ["ownership"]
    assert h.findings[0].message.startswith(
        "xen reads its RX buffer while the SPMC holds it EMPTY, not FULL"
    )
    spmc.mailboxes[0].state.name = "FULL"
    h.findings.clear()
    with h.thread("d1v0"):
        h.machine.mem.read(rx.pa, 24, "xen")
    assert h.findings == []


def test_ownership_vm_rx_write_judged_only_after_rx_acquire() -> None:
    h = Harness(OwnershipMonitor())
    rx = guest_frame(h)
    spmc = _Spmc()
    spmc.mailboxes[1] = _Mailbox(rx, "EMPTY")
    h.machine.spmc = spmc  # type: ignore[attr-defined]
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_PARTITION_INFO_GET):
        h.machine.mem.write(rx.pa, b"\0" * 24, "xen")  # no RX_ACQUIRE protocol in use
    assert h.findings == []
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_PARTITION_INFO_GET):
        h.call("smc", "xen", abi.regs(abi.FFA_RX_ACQUIRE, 1))
        h.ret("smc", "xen", abi.success())
        spmc.mailboxes[1].state.name = "OTHER_WORLD_OWNED"
        h.machine.mem.write(rx.pa, b"\0" * 24, "xen")
        spmc.mailboxes[1].state.name = "FULL"
        h.machine.mem.write(rx.pa, b"\0" * 24, "xen")
    assert h.kinds() == ["ownership"]
    assert "VM 0x1's RX buffer while the SPMC holds it FULL" in h.findings[0].message


# -- violations, leaks ------------------------------------------------------------------


def test_violation_of_other_kinds_keeps_its_kind() -> None:
    h = Harness(ViolationMonitor(), OwnershipMonitor())
    h.violation("isolation", "sp8002 retrieves a handle it was not given")
    h.violation("weird", "something")
    assert [(f.kind, f.message) for f in h.findings] == [
        ("isolation", "sp8002 retrieves a handle it was not given"),
        ("spec", "weird: something"),
    ]


def test_leak_lock_held_at_the_end_is_reported() -> None:
    h = Harness(LeakMonitor())
    lock = h.machine.spinlock("ffa_ctx_list_rwlock")
    with h.thread("timer"):
        spin_lock(lock)
    h.finish()
    assert [f.message for f in h.findings] == [
        "locks still held at the end: ffa_ctx_list_rwlock by timer"
    ]


def test_default_monitors_are_fresh_instances_of_every_monitor() -> None:
    a, b = default_monitors(), default_monitors()
    assert [type(m) for m in a] == [type(m) for m in b]
    assert all(x is not y for x, y in zip(a, b, strict=True))
    assert {type(m).__name__ for m in a} >= {
        "LockLeakMonitor",
        "OwnershipMonitor",
        "RaceMonitor",
        "DoubleFetchMonitor",
        "IsolationMonitor",
        "LeakMonitor",
    }


@pytest.mark.parametrize("make", [LockLeakMonitor, RaceMonitor, DoubleFetchMonitor])
def test_monitors_are_silent_on_a_clean_sequential_run(make: Callable[[], Monitor]) -> None:
    h = Harness(make())
    lock = h.machine.spinlock("l")
    buf = guest_frame(h)
    with h.thread("d0v0"), h.hvc("d0v0", abi.FFA_VERSION):
        spin_lock(lock)
        h.machine.mem.read(buf.pa, 8, "xen")
        spin_unlock(lock)
    h.end("d0v0")
    assert h.findings == []


def test_leak_free_frame_still_granted_is_reported() -> None:
    h = Harness(LeakMonitor())
    tx = xen_frame(h, "ffa_spmc_tx")
    grant(tx, "spmc")
    h.machine.heap.free_page(tx)
    h.finish()
    assert [f.message for f in h.findings] == [
        f"frame 0x{tx.mfn:x} (free) is free but still mapped by spmc"
    ]


# -- data-race against a brute-force happens-before oracle -------------------------------------

Block = tuple[str, str]  # (thread, "locked-read" | "locked-write" | "read" | "write" | "atomic")

_blocks = st.lists(
    st.tuples(
        st.sampled_from(["d0v0", "d0v1", "d1v0"]),
        st.sampled_from(["locked-read", "locked-write", "read", "write", "atomic"]),
    ),
    max_size=12,
)


def _oracle_races(blocks: list[Block]) -> bool:
    """Whether two accesses of different threads conflict without a happens-before path:
    program order, every unlock to each later lock, every atomic to each later atomic
    (transitive closure by graph search, independent of the monitor's vector clocks)."""
    events: list[tuple[str, str]] = []  # (thread, kind) with kind in lock/unlock/r/w/atomic
    for t, b in blocks:
        if b.startswith("locked-"):
            events += [(t, "lock"), (t, b[7]), (t, "unlock")]
        elif b == "atomic":
            events.append((t, "atomic"))
        else:
            events.append((t, b[0]))
    n = len(events)
    succ: list[set[int]] = [set() for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            ti, ki = events[i]
            tj, kj = events[j]
            if ti == tj or (ki == "unlock" and kj == "lock") or (ki == kj == "atomic"):
                succ[i].add(j)

    def reaches(a: int, b: int) -> bool:
        seen, todo = {a}, [a]
        while todo:
            x = todo.pop()
            if x == b:
                return True
            for y in succ[x] - seen:
                seen.add(y)
                todo.append(y)
        return False

    acc = [i for i, (_, k) in enumerate(events) if k in ("r", "w")]
    for x, i in enumerate(acc):
        for j in acc[x + 1 :]:
            conflict = events[i][0] != events[j][0] and "w" in (events[i][1], events[j][1])
            if conflict and not reaches(i, j):
                return True
    return False


@settings(max_examples=200, deadline=None)
@given(_blocks)
def test_race_monitor_agrees_with_brute_force_happens_before(blocks: list[Block]) -> None:
    h = Harness(RaceMonitor(lockset=False))  # the happens-before half; the lockset rule adds
    lock = h.machine.spinlock("l")
    flag = Atomic(h.machine, "flag")
    field = Guarded(h.machine, "x", 0, guard=lock)
    for t, b in blocks:
        with h.thread(t):
            if b.startswith("locked-"):
                spin_lock(lock)
            if b == "atomic":
                flag.inc()
            elif b.endswith("write"):
                field.set(1)
            else:
                field.get()
            if b.startswith("locked-"):
                spin_unlock(lock)
    assert bool(h.findings) == _oracle_races(blocks)


def test_leak_lock_already_named_by_another_finding_is_not_repeated() -> None:
    h = Harness(LeakMonitor())
    a, b = h.machine.spinlock("ffa_spmc_tx_lock"), h.machine.spinlock("ctx->lock")
    with h.thread("d1v0"):
        spin_lock(a)
        spin_lock(b)
    h.add_finding("lock-leak", "d1v0 returns from FFA_RXTX_MAP_64 still holding ffa_spmc_tx_lock")
    h.finish()
    assert [f.message for f in h.findings[1:]] == ["locks still held at the end: ctx->lock by d1v0"]
