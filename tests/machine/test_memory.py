"""Sparse physical memory, the heap allocator, references, grants, stage-2 and the conduit."""

from __future__ import annotations

import pytest

from ffasim import abi
from ffasim.machine import (
    P2M,
    PAGE_SIZE,
    AccessFault,
    EventSink,
    HypervisorPanic,
    Machine,
    P2MType,
    SmcConduit,
    get_page,
    get_page_from_gfn,
    grant,
    put_page,
    revoke,
)

HIGH = 0x8_0000_0000  # 32 GiB: far beyond anything allocated


class AccessLog(EventSink):
    def __init__(self) -> None:
        self.accesses: list[tuple[str, int, int, int, bool]] = []
        self.allocs: list[int] = []
        self.frees: list[int] = []

    def mem_access(self, party, frame, offset, size, write):
        self.accesses.append((party, frame.mfn, offset, size, write))

    def page_alloc(self, frame):
        self.allocs.append(frame.mfn)

    def page_free(self, frame):
        self.frees.append(frame.mfn)


class FailAt(EventSink):
    """Injects a failure at one fault site, and records every site asked about."""

    def __init__(self, site: str, answer: int = 1) -> None:
        self.site = site
        self.answer = answer
        self.asked: list[tuple[str, tuple[int, ...]]] = []

    def fault(self, site, choices):
        self.asked.append((site, choices))
        return self.answer if site == self.site else None


def test_untouched_memory_reads_zero_and_allocates_no_bytes():
    m = Machine()
    assert m.mem.read(HIGH, 16, "xen") == bytes(16)
    f = m.mem.frame_at(HIGH)
    assert f.data is None  # reading did not materialise the page
    assert not f.allocated
    m.mem.write(HIGH + 8, b"\x01", "xen")
    assert f.data is not None and len(f.data) == PAGE_SIZE
    assert m.mem.read(HIGH, 10, "xen") == bytes(8) + b"\x01\x00"


def test_touching_many_distant_frames_keeps_only_those_frames():
    m = Machine()
    for i in range(64):
        m.mem.read(HIGH + i * 0x1000_0000, 1, "xen")
    assert len(m.mem.frames) == 64
    assert all(f.data is None for f in m.mem.frames.values())


def test_reads_and_writes_cross_frame_boundaries():
    sink = AccessLog()
    m = Machine(sink)
    pa = HIGH + PAGE_SIZE - 3
    m.mem.write(pa, b"abcdefg", "d0")
    assert m.mem.read(pa, 7, "d0") == b"abcdefg"
    assert m.mem.read(HIGH + PAGE_SIZE, 4, "d0") == b"defg"
    mfn = HIGH >> 12
    assert sink.accesses == [
        ("d0", mfn, PAGE_SIZE - 3, 3, True),
        ("d0", mfn + 1, 0, 4, True),
        ("d0", mfn, PAGE_SIZE - 3, 3, False),
        ("d0", mfn + 1, 0, 4, False),
        ("d0", mfn + 1, 0, 4, False),
    ]


def test_read_of_zero_bytes_is_empty_and_silent():
    sink = AccessLog()
    m = Machine(sink)
    assert m.mem.read(HIGH, 0, "xen") == b""
    assert sink.accesses == []


def test_access_outside_physical_memory_faults():
    m = Machine()
    with pytest.raises(AccessFault, match="outside physical memory"):
        m.mem.read(1 << 40, 1, "xen")


def test_fill_sets_every_byte():
    m = Machine()
    m.mem.fill(HIGH + 10, 0x1AB, 5, "sp8002")
    assert m.mem.read(HIGH + 8, 9, "sp8002") == b"\0\0" + b"\xab" * 5 + b"\0\0"


def test_heap_reuses_the_last_freed_page_first():
    sink = AccessLog()
    m = Machine(sink)
    a = m.heap.alloc_page("xen", tag="a")
    b = m.heap.alloc_page("xen", tag="b")
    c = m.heap.alloc_page("xen", tag="c")
    assert a and b and c
    assert (b.mfn, c.mfn) == (a.mfn + 1, a.mfn + 2)
    m.heap.free_page(a)
    m.heap.free_page(c)
    again = m.heap.alloc_page("d0")
    assert again is c and again.owner == "d0" and again.tag == ""
    assert m.heap.alloc_page("d0") is a
    assert m.heap.in_use == 3
    assert sink.frees == [a.mfn, c.mfn]
    assert sink.allocs == [a.mfn, b.mfn, c.mfn, c.mfn, a.mfn]


def test_reallocated_page_is_zeroed():
    m = Machine()
    f = m.heap.alloc_page("xen")
    assert f is not None
    m.mem.write(f.pa, b"secret", "xen")
    m.heap.free_page(f)
    g = m.heap.alloc_page("d1")
    assert g is f
    assert m.mem.read(g.pa, 6, "d1") == bytes(6)


def test_double_free_panics():
    m = Machine()
    f = m.heap.alloc_page("xen")
    assert f is not None
    m.heap.free_page(f)
    with pytest.raises(HypervisorPanic, match=r"^free of free page 0x"):
        m.heap.free_page(f)


def test_injected_allocation_failure_returns_none_at_its_site():
    sink = FailAt("alloc:ffa_rxtx_spmc_init")
    m = Machine(sink)
    assert m.heap.alloc_page("xen", site="ffa_rxtx_spmc_init") is None
    assert m.heap.alloc_page("xen", site="other") is not None
    assert m.heap.alloc_page("xen") is not None  # no site: never injected
    assert sink.asked == [("alloc:ffa_rxtx_spmc_init", (1,)), ("alloc:other", (1,))]
    assert m.heap.in_use == 2


def test_exhausted_pool_returns_none():
    m = Machine()
    m.secure_heap.next_mfn = m.secure_heap.limit - 1
    assert m.secure_heap.alloc_page("spmc") is not None
    assert m.secure_heap.alloc_page("spmc") is None
    assert m.secure_heap.alloc_contiguous(2, "sp8001") is None


def test_contiguous_allocation_is_physically_contiguous_and_secure_pool_is_secure():
    m = Machine()
    frames = m.secure_heap.alloc_contiguous(4, "sp8001", tag="ram")
    assert frames is not None
    assert [f.mfn - frames[0].mfn for f in frames] == [0, 1, 2, 3]
    assert all(f.secure and f.owner == "sp8001" for f in frames)
    ns = m.heap.alloc_page("d0")
    assert ns is not None and not ns.secure


def test_may_access_follows_owner_grants_and_xen():
    m = Machine()
    f = m.heap.alloc_page("d0")
    s = m.secure_heap.alloc_page("sp8001")
    assert f is not None and s is not None
    assert f.may_access("d0") and f.may_access("xen")
    assert not f.may_access("d1") and not f.may_access("sp8002")
    grant(f, "sp8002")
    grant(f, "sp8002")
    revoke(f, "sp8002")
    assert f.may_access("sp8002")
    revoke(f, "sp8002")
    assert not f.may_access("sp8002")
    assert not s.may_access("xen")  # Xen cannot see secure memory
    m.heap.free_page(f)
    assert not f.may_access("xen")


def test_get_page_and_put_page_count_references():
    m = Machine()
    f = m.heap.alloc_page("d0")
    assert f is not None
    get_page(f)
    get_page(f)
    put_page(f)
    assert f.refcount == 1
    put_page(f)
    with pytest.raises(HypervisorPanic, match=r"put_page on 0x[0-9a-f]+ with no reference"):
        put_page(f)


def test_p2m_translates_and_get_page_from_gfn_takes_a_reference():
    m = Machine()
    frames = m.heap.alloc_contiguous(2, "d0")
    assert frames is not None
    p2m = P2M(m, "d0")
    p2m.map(0x40000, frames[0])
    p2m.map(0x40001, frames[1], P2MType.mmio_direct)
    assert p2m.translate(0x40000_123) == frames[0].pa + 0x123
    assert p2m.translate(0x40002_000) is None
    got = get_page_from_gfn(p2m, 0x40001)
    assert got == (frames[1], P2MType.mmio_direct)
    assert frames[1].refcount == 1 and frames[0].refcount == 0
    assert get_page_from_gfn(p2m, 0x50000) is None
    p2m.unmap(0x40001)
    assert p2m.lookup(0x40001) is None


def test_conduit_forwards_to_the_spmc_entry():
    m = Machine()
    seen = []

    def entry(caller_id, regs):
        seen.append((caller_id, regs[:3]))
        return abi.success(0x10002, fid=abi.FFA_VERSION)

    conduit = SmcConduit(m, entry)
    r = conduit.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2, caller_id=0)
    assert r[:3] == (abi.FFA_VERSION, 0, 0x10002)
    assert seen == [(0, (abi.FFA_VERSION, abi.FFA_VERSION_1_2, 0))]


def test_conduit_fault_site_answers_the_injected_error_without_running_the_spmc():
    sink = FailAt("smc:FFA_RX_RELEASE", abi.FFA_RET_DENIED)
    m = Machine(sink)
    ran = []
    conduit = SmcConduit(m, lambda c, r: ran.append(r) or abi.success())
    r = conduit.smc(abi.FFA_RX_RELEASE, 3)
    assert abi.is_error(r) and abi.error_code(r) == abi.FFA_RET_DENIED
    assert r == abi.error(abi.FFA_RET_DENIED)
    assert ran == []
    site, choices = sink.asked[0]
    assert site == "smc:FFA_RX_RELEASE"
    assert abi.FFA_RET_DENIED in choices and abi.FFA_RET_BUSY in choices
    r = conduit.smc(abi.FFA_ID_GET)
    assert abi.is_success(r) and len(ran) == 1
