"""The SPMC's fast paths behave exactly as the general code they shortcut.

Covers the register range test of the entry point, the one-frame paths of physical memory
(same bytes, same events), lock release out of order, and the memoised pure functions
(descriptor decode + sanity check, partition properties, endpoint party names): a memo must
never answer for a different input.
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from ffasim import abi
from ffasim.machine import Frame, Machine, spin_lock, spin_unlock
from ffasim.machine.events import EventSink, RecordingSink
from ffasim.spmc import SecurePartition
from ffasim.spmc import memory as spmc_memory
from ffasim.spmc.mailbox import Endpoint, Mailbox, Notifications
from ffasim.spmc.spmc import _normalise

from .helpers import RW, code, make, txn

INVALID = abi.FFA_RET_INVALID_PARAMETERS


# -- register normalisation ---------------------------------------------------------------------


def _expected(values: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """The entry's register rule, written out: 18 registers, each taken modulo 2**64, missing
    ones 0; x0 is a 32-bit function ID; an SMC32 call sees only the low halves of x1..x7."""
    vals = [int(v) % (1 << 64) for v in list(values)[:18]]
    vals += [0] * (18 - len(vals))
    vals[0] %= 1 << 32
    if not vals[0] & (1 << 30):
        vals[1:8] = [v % (1 << 32) for v in vals[1:8]]
    return tuple(vals)


_REG = st.one_of(
    st.integers(0, abi.MASK32),
    st.integers(0, abi.MASK64),
    st.integers(-(1 << 70), 1 << 70),
    st.sampled_from([0, 1, abi.MASK32, abi.MASK32 + 1, abi.MASK64, abi.MASK64 + 1, -1]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_REG, min_size=0, max_size=20),
    st.sampled_from([abi.FFA_MEM_SHARE_32, abi.FFA_MEM_SHARE_64, abi.FFA_VERSION]),
)
def test_register_normalisation_matches_the_written_rule(values: list[int], fid: int) -> None:
    regs = [fid, *values][:20]
    assert _normalise(tuple(regs)) == _expected(regs)
    assert _normalise(list(regs)) == _expected(regs)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, abi.MASK64), min_size=17, max_size=17), st.booleans())
def test_register_tuple_already_in_range_is_passed_through(rest: list[int], smc64: bool) -> None:
    fid = abi.FFA_MEM_SHARE_64 if smc64 else abi.FFA_MEM_SHARE_32
    regs = (fid, *rest)
    out = _normalise(regs)
    assert out == _expected(regs)
    if out == regs:
        assert out is regs  # canonical input is not copied


def test_smc32_call_high_register_bits_are_dropped_but_smc64_keeps_them() -> None:
    high = (1 << 40) | 5
    assert _normalise(abi.regs(abi.FFA_MEM_SHARE_32, high))[1] == 5
    assert _normalise(abi.regs(abi.FFA_MEM_SHARE_64, high))[1] == high
    assert _normalise(abi.regs(abi.FFA_MEM_SHARE_32, 0, 0, 0, 0, 0, 0, 0, high))[8] == high


def test_entry_from_a_vm_id_is_not_supported_and_from_unknown_partition_too() -> None:
    spmc, _hyp = make()
    ok = spmc.entry(0, abi.regs(abi.FFA_ID_GET))
    assert ok[0] == abi.FFA_SUCCESS_32
    for caller in (1, 0x7FFF, 0x8FFF):
        r = spmc.entry(caller, abi.regs(abi.FFA_ID_GET))
        assert code(r) == abi.FFA_RET_NOT_SUPPORTED


# -- physical memory fast paths -----------------------------------------------------------------


class _MemSink(EventSink):
    def __init__(self) -> None:
        self.accesses: list[tuple[str, int, int, int, bool]] = []

    def mem_access(self, party: str, frame: Frame, offset: int, size: int, write: bool) -> None:
        self.accesses.append((party, frame.mfn, offset, size, write))


def _machine() -> tuple[Machine, _MemSink, list[Frame]]:
    sink = _MemSink()
    m = Machine(sink)
    frames = m.heap.alloc_contiguous(2, "d0")
    assert frames is not None
    return m, sink, frames


def test_one_frame_write_and_read_report_one_event_each_with_exact_offset() -> None:
    m, sink, (f, _g) = _machine()
    for data in (b"abc", bytearray(b"abc"), memoryview(b"abc")):
        sink.accesses.clear()
        m.mem.write(f.pa + 100, data, "d0")
        assert m.mem.read(f.pa + 100, 3, "d0") == b"abc"
        assert sink.accesses == [("d0", f.mfn, 100, 3, True), ("d0", f.mfn, 100, 3, False)]


def test_write_ending_exactly_at_the_page_end_stays_one_event() -> None:
    m, sink, (f, _g) = _machine()
    m.mem.write(f.pa + 4090, b"123456", "d0")
    assert sink.accesses == [("d0", f.mfn, 4090, 6, True)]
    assert m.mem.read(f.pa + 4090, 6, "xen") == b"123456"


def test_access_crossing_a_frame_boundary_reports_one_event_per_frame() -> None:
    m, sink, (f, g) = _machine()
    m.mem.write(f.pa + 4094, b"wxyz", "d0")
    assert m.mem.read(f.pa + 4094, 4, "d0") == b"wxyz"
    assert sink.accesses == [
        ("d0", f.mfn, 4094, 2, True),
        ("d0", g.mfn, 0, 2, True),
        ("d0", f.mfn, 4094, 2, False),
        ("d0", g.mfn, 0, 2, False),
    ]


def test_untouched_frame_reads_zeros_and_large_reads_are_exact_copies() -> None:
    m, sink, (f, g) = _machine()
    assert m.mem.read(g.pa + 8, 16, "d0") == bytes(16)
    page = bytes(range(256)) * 16
    m.mem.write(f.pa, page, "d0")
    got = m.mem.read(f.pa, 4096, "d0")
    assert got == page and type(got) is bytes
    m.mem.write(f.pa, b"\xff", "d0")
    assert got[0] == 0  # a copy, not a view of the frame
    assert sink.accesses[0] == ("d0", g.mfn, 8, 16, False)


def test_empty_write_and_read_report_nothing() -> None:
    m, sink, (f, _g) = _machine()
    m.mem.write(f.pa, b"", "d0")
    assert m.mem.read(f.pa, 0, "d0") == b""
    assert sink.accesses == []


# -- locks -------------------------------------------------------------------------------------


def test_spinlocks_released_out_of_order_leave_the_held_list_right() -> None:
    m = Machine()
    a, b = m.spinlock("a"), m.spinlock("b")
    spin_lock(a)
    spin_lock(b)
    spin_unlock(a)  # not the most recent: the general removal
    assert m.held == [b]
    spin_unlock(b)
    assert m.held == []
    spin_lock(a)
    spin_lock(b)
    spin_unlock(b)
    spin_unlock(a)
    assert m.held == [] and a.holder is None and b.holder is None


# -- memoised descriptor checks ----------------------------------------------------------------


def test_same_descriptor_bytes_judged_per_version() -> None:
    """A 32-byte-EMAD descriptor is fine for a v1.2 sender and INVALID for a v1.1 one, in
    either order: the memo of decoded descriptors is keyed by version."""
    for order in ((abi.FFA_VERSION_1_2, abi.FFA_VERSION_1_1), (abi.FFA_VERSION_1_1,)):
        for version in order:
            _spmc, hyp = make(version=version)
            frames = hyp.vm_pages(1, 1)
            desc = txn(1, [(0x8001, RW)], [(frames[0].pa, 1)], emad_size=32)
            r = hyp.send(abi.FFA_MEM_SHARE_64, desc)
            if version == abi.FFA_VERSION_1_2:
                assert r[0] == abi.FFA_SUCCESS_32
            else:
                assert code(r) == INVALID


def test_same_bytes_checked_as_send_and_as_retrieve_differ() -> None:
    desc = txn(1, [(0x8001, RW)], [(0x80000000, 1)])
    v = abi.FFA_VERSION_1_2
    spmc_memory._CHECKED.clear()
    as_send = spmc_memory._decode_checked(desc, v, retrieve=False)
    as_retrieve = spmc_memory._decode_checked(desc, v, retrieve=True)
    assert as_send[1] == abi.FFA_RET_OK
    assert as_retrieve[1] == INVALID  # a retrieve request's composite offset is 0
    assert spmc_memory._decode_checked(desc, v, retrieve=False) == as_send


def test_descriptor_memo_is_bounded() -> None:
    v = abi.FFA_VERSION_1_2
    for i in range(spmc_memory._CHECKED_MAX + 50):
        spmc_memory._decode_checked(txn(1, [(0x8001, RW)], [(0x80000000, 1)], tag=i), v, False)
        assert len(spmc_memory._CHECKED) <= spmc_memory._CHECKED_MAX


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 127),
    st.integers(0, 255),
    st.sampled_from([abi.FFA_VERSION_1_0, abi.FFA_VERSION_1_1, abi.FFA_VERSION_1_2]),
    st.booleans(),
    st.integers(0, 128),
)
def test_memoised_check_equals_decode_then_sanity_check(
    at: int, byte: int, version: int, retrieve: bool, cut: int
) -> None:
    good = bytearray(txn(1, [(0x8001, RW), (0x8002, RW)], [(0x80000000, 1)]))
    good[at] = byte
    buf = bytes(good[: len(good) - cut])
    txn_, ret = spmc_memory._decode_checked(buf, version, retrieve)
    direct = spmc_memory._decode(buf, version)
    assert txn_ == direct
    if isinstance(direct, int):
        assert ret == 0
    else:
        assert ret == spmc_memory._sanity_check(direct, len(buf), version, retrieve)


# -- memoised partition properties and party names --------------------------------------------


def test_partition_properties_follow_a_manifest_change_after_boot() -> None:
    sp = SecurePartition(0x8001, "bbbbbbbb-0000-0000-0000-000000000001", properties=0x1)
    _spmc, hyp = make([sp])

    def props() -> int:
        r = hyp.call(abi.FFA_PARTITION_INFO_GET)
        assert r[0] == abi.FFA_SUCCESS_32 and r[2] == 1
        entry = hyp.read_rx(24)
        assert abi.is_success(hyp.call(abi.FFA_RX_RELEASE))
        return int(struct.unpack_from("<I", entry, 4)[0])

    assert props() == 0x1 | abi.FFA_PART_PROP_AARCH64_STATE
    sp.properties = 0x3  # also "can send direct requests": not shown to the normal world
    assert props() == 0x1 | abi.FFA_PART_PROP_AARCH64_STATE
    sp.properties = 0x1 | abi.FFA_PART_PROP_RECV_NOTIF
    assert props() == 0x1 | abi.FFA_PART_PROP_AARCH64_STATE | abi.FFA_PART_PROP_RECV_NOTIF


def test_endpoint_party_names() -> None:
    def ep(i: int) -> Endpoint:
        lock = Machine().spinlock("lock")
        return Endpoint(i, abi.FFA_VERSION_1_2, Mailbox(i), Notifications(enabled=False), lock)

    assert [ep(i).party for i in (0, 1, 5, 0x8001, 0x8ABC)] == [
        "xen",
        "d0",
        "d4",
        "sp8001",
        "sp8abc",
    ]
    assert ep(5).party == "d4"  # asked again: the same answer


# -- memoised send verdicts ---------------------------------------------------------------------


def test_repeated_bad_send_is_refused_and_logged_every_time() -> None:
    spmc, hyp = make()
    sink = RecordingSink()
    spmc.machine.sink = sink
    frames = hyp.vm_pages(1, 1)
    bad = txn(1, [(0x8001, RW)], [(frames[0].pa, 1)], flags=1 << 7)
    for _ in range(2):
        assert code(hyp.send(abi.FFA_MEM_SHARE_64, bad)) == INVALID
    logs = [e[3] for e in sink.events if e[0] == "log"]
    assert len(logs) == 2 and logs[0] == logs[1] and "bad flags 0x80" in str(logs[0])


def test_same_first_fragment_with_another_total_length_gets_its_own_verdict() -> None:
    _spmc, hyp = make()
    frames = hyp.vm_pages(1, 1)
    desc = txn(1, [(0x8001, RW)], [(frames[0].pa, 1)])
    hyp.write_tx(desc)
    # Announced 16 bytes longer: the constituent count no longer matches the length.
    assert code(hyp.call(abi.FFA_MEM_SHARE_64, len(desc) + 16, len(desc))) == INVALID
    assert hyp.call(abi.FFA_MEM_SHARE_64, len(desc), len(desc))[0] == abi.FFA_SUCCESS_32
    hyp.write_tx(desc)
    assert code(hyp.call(abi.FFA_MEM_SHARE_64, len(desc) + 16, len(desc))) == INVALID


def test_same_descriptor_bytes_from_another_caller_get_their_own_verdict() -> None:
    sp = SecurePartition(0x8001, "bbbbbbbb-0000-0000-0000-000000000001")
    other = SecurePartition(0x8002, "bbbbbbbb-0000-0000-0000-000000000002")
    _spmc, hyp = make([sp, other])
    frames = hyp.vm_pages(1, 1)
    desc = txn(1, [(0x8002, RW)], [(frames[0].pa, 1)])
    for _ in range(2):
        sp.write(sp.tx, desc)  # a partition may not send for VM 1
        assert code(sp.smc(abi.FFA_MEM_SHARE_64, len(desc), len(desc))) == abi.FFA_RET_DENIED
        r = hyp.send(abi.FFA_MEM_SHARE_64, desc)
        assert r[0] == abi.FFA_SUCCESS_32
        assert hyp.call(abi.FFA_MEM_RECLAIM, r[2], r[3], 0)[0] == abi.FFA_SUCCESS_32


def test_send_verdict_memo_is_bounded() -> None:
    spmc, hyp = make()
    frames = hyp.vm_pages(1, 1)
    for tag in range(spmc_memory._CHECKED_MAX + 20):
        desc = txn(1, [(0x8001, RW)], [(frames[0].pa, 1)], tag=tag, flags=1 << 7)
        assert code(hyp.send(abi.FFA_MEM_SHARE_64, desc)) == INVALID
        assert len(spmc.send_verdicts) <= spmc_memory._CHECKED_MAX


def test_share_state_records_the_send_fields() -> None:
    spmc, hyp = make()
    frames = hyp.vm_pages(1, 2)
    desc = txn(1, [(0x8001, RW)], [(f.pa, 1) for f in frames], tag=7, attrs=0, flags=1)
    r = hyp.send(abi.FFA_MEM_LEND_64, desc)
    assert r[0] == abi.FFA_SUCCESS_32
    state = spmc.shares[r[2]]
    got = (state.handle, state.kind, state.sender, state.caller, state.version, state.tag)
    assert got == (r[2], "lend", 1, 0, spmc.endpoints[0].version, 7)
    assert (state.attributes, state.flags, state.total_length) == (0, 1, len(desc))
    assert state.composite_offset == 48 + 32 and state.receivers == [0x8001]
    assert state.constituents == [(f.pa, 1) for f in frames] and state.total_page_count == 2
    assert state.complete and state.raw == bytearray()
