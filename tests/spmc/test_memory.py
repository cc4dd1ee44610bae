"""Memory sharing at the SPMC (hafnium-spmc.md §4): send, fragments, retrieve, relinquish,
reclaim, with the exact error of each check and the page ownership afterwards."""

from __future__ import annotations

import struct

import pytest

from ffasim import abi
from ffasim.machine import AccessFault, Frame, Machine
from ffasim.spmc import DirectMessage, SecurePartition, Spmc, default_partitions

from .helpers import (
    NX,
    RO,
    RW,
    Hyp,
    code,
    handle_of,
    make,
    relinquish_desc,
    retrieve_req,
    txn,
)

SHARE, LEND, DONATE = abi.FFA_MEM_SHARE_64, abi.FFA_MEM_LEND_64, abi.FFA_MEM_DONATE_64
INVALID, DENIED = abi.FFA_RET_INVALID_PARAMETERS, abi.FFA_RET_DENIED
KIND_ATTRS = {SHARE: 0x2F, LEND: 0x00, DONATE: 0x00}
KIND_PERMS = {SHARE: RW, LEND: RW, DONATE: 0}
KIND_RETRIEVE = {SHARE: RW, LEND: RW | NX, DONATE: RW | NX}


class Borrower(SecurePartition):
    """A partition whose handler runs a test-supplied function, plus helpers for the tests."""

    def __init__(self, id: int = 0x8002) -> None:
        super().__init__(id, f"bbbbbbbb-0000-0000-0000-{id:012x}", properties=0x10B)

    def retrieve(self, sender: int, handle: int, perms: int, **kw: int) -> abi.Regs:
        req = retrieve_req(sender, handle, [(self.id, perms)], **kw)
        self.write(self.tx, req)
        return self.smc(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req))

    def relinquish(self, handle: int, flags: int = 0) -> abi.Regs:
        self.write(self.tx, relinquish_desc(handle, [self.id], flags))
        return self.smc(abi.FFA_MEM_RELINQUISH)


def setup(pages: int = 2) -> tuple[Spmc, Hyp, Borrower, list[Frame]]:
    sp = Borrower()
    spmc, hyp = make([SecurePartition(0x8001, "bbbbbbbb-0000-0000-0000-000000000001"), sp])
    frames = hyp.vm_pages(1, pages)
    for i, f in enumerate(frames):
        hyp.m.mem.write(f.pa, bytes([i + 1]) * 4096, "d0")
    return spmc, hyp, sp, frames


def send(hyp: Hyp, fid: int, frames: list[Frame], **kw: object) -> abi.Regs:
    receivers = kw.pop("receivers", [(0x8002, KIND_PERMS[fid])])
    kw.setdefault("attrs", KIND_ATTRS[fid])
    consts = kw.pop("consts", [(f.pa, 1) for f in frames])
    return hyp.send(fid, txn(1, receivers, consts, **kw))  # type: ignore[arg-type]


def parse_response(data: bytes) -> tuple[int, int, int, list[tuple[int, int]]]:
    """(flags, attributes, permissions, constituents) of a v1.2 retrieve response."""
    _s, attrs, flags = struct.unpack_from("<HHI", data)
    _size, _count, off = struct.unpack_from("<III", data, 24)
    _rid, perms, _f, comp = struct.unpack_from("<HBBI", data, off)
    _pages, n, _ = struct.unpack_from("<IIQ", data, comp)
    consts = [struct.unpack_from("<QI", data, comp + 16 + 16 * i) for i in range(n)]
    return flags, attrs, perms, consts


# -- full cycles ---------------------------------------------------------------------------


@pytest.mark.parametrize("fid", [SHARE, LEND, DONATE])
def test_full_cycle_borrower_sees_bytes_and_ownership_returns(fid: int) -> None:
    spmc, hyp, sp, frames = setup()
    r = send(hyp, fid, frames)
    handle = handle_of(r)
    assert handle == 0  # first free slot, bit 63 clear
    share = spmc.shares[handle]
    assert share.kind == {SHARE: "share", LEND: "lend", DONATE: "donate"}[fid]
    assert [f.mfn for f in share.frames] == [f.mfn for f in frames]
    # The lender loses access for lend/donate in the SPMC's view (not for share).
    assert spmc.sender_has_access(frames[0].mfn) == (fid == SHARE)
    with pytest.raises(AccessFault):
        sp.read(frames[0].pa, 1)
    r = sp.retrieve(1, handle, KIND_RETRIEVE[fid])
    assert r[0] == abi.FFA_MEM_RETRIEVE_RESP and r[1] == r[2]
    flags, attrs, perms, consts = parse_response(sp.read(sp.rx, r[2]))
    assert (flags >> 3) & 3 == {SHARE: 1, LEND: 2, DONATE: 3}[fid]
    assert attrs & abi.FFA_MEM_ATTR_NS
    assert perms == (RW | NX)
    assert consts == [(frames[0].pa, 1), (frames[1].pa, 1)]
    assert sp.read(frames[1].pa, 4) == b"\x02" * 4
    sp.write(frames[0].pa, b"\xee")
    assert frames[0].grants["sp8002"] == 1
    assert sp.smc(abi.FFA_RX_RELEASE)[0] == abi.FFA_SUCCESS_32
    assert spmc.invariant_problems() == []
    if fid == DONATE:
        # The donation is final: the handle is gone, the pages are the partition's.
        assert handle not in spmc.shares
        assert spmc.donated[frames[0].mfn] == 0x8002
        assert code(sp.relinquish(handle)) == INVALID
        assert code(hyp.call(abi.FFA_MEM_RECLAIM, handle, 0, 0)) == INVALID
        return
    assert code(hyp.call(abi.FFA_MEM_RECLAIM, handle, 0, 0)) == DENIED  # still borrowed
    assert sp.relinquish(handle)[0] == abi.FFA_SUCCESS_32
    assert share.retrieved == {0x8002: False} and share.relinquished == {0x8002: 1}
    assert frames[0].grants["sp8002"] == 0
    with pytest.raises(AccessFault):
        sp.read(frames[0].pa, 1)
    assert hyp.call(abi.FFA_MEM_RECLAIM, handle, 0, 0)[0] == abi.FFA_SUCCESS_32
    assert spmc.shares == {} and spmc.page_share == {}
    assert spmc.sender_has_access(frames[0].mfn)
    assert hyp.m.mem.read(frames[0].pa, 2, "d0") == b"\xee\x01"
    assert spmc.invariant_problems() == []


@pytest.mark.parametrize("fid", [SHARE, LEND])
def test_fragmented_send_then_fragmented_retrieve(fid: int) -> None:
    sp = Borrower()
    spmc, hyp = make([sp])
    frames = hyp.vm_pages(1, 600)
    # Non-contiguous constituents (every other page) so that there are 300 of them.
    consts = [(frames[2 * i].pa, 1) for i in range(300)]
    desc = txn(1, [(0x8002, RW)], consts, attrs=KIND_ATTRS[fid])
    assert len(desc) == 48 + 32 + 16 + 300 * 16
    r = hyp.send(fid, desc, frag=4096)
    assert r[0] == abi.FFA_MEM_FRAG_RX
    handle = abi.make_handle(r[1], r[2])
    assert r[3] == 4096 and r[4] == 1 << 16
    assert code(sp.retrieve(1, handle, KIND_RETRIEVE[fid])) == INVALID  # send incomplete
    hyp.write_tx(desc[4096:])
    r = hyp.call(abi.FFA_MEM_FRAG_TX, handle, 0, len(desc) - 4096, 1 << 16)
    assert r[0] == abi.FFA_SUCCESS_32 and handle_of(r) == handle
    r = sp.retrieve(1, handle, KIND_RETRIEVE[fid])
    assert r[0] == abi.FFA_MEM_RETRIEVE_RESP and r[1] == len(desc) and r[2] < r[1]
    data = sp.read(sp.rx, r[2])
    # FRAG_RX before releasing the RX buffer is BUSY.
    assert code(sp.smc(abi.FFA_MEM_FRAG_RX, handle, 0, len(data))) == abi.FFA_RET_BUSY
    assert code(sp.relinquish(handle)) == INVALID  # not fully retrieved
    while len(data) < r[1]:
        sp.smc(abi.FFA_RX_RELEASE)
        assert code(sp.smc(abi.FFA_MEM_FRAG_RX, handle, 0, len(data) + 16)) == INVALID
        f = sp.smc(abi.FFA_MEM_FRAG_RX, handle, 0, len(data))
        assert f[0] == abi.FFA_MEM_FRAG_TX and f[1] == handle and f[4] == 0
        data += sp.read(sp.rx, f[3])
    sp.smc(abi.FFA_RX_RELEASE)
    assert parse_response(data)[3] == consts
    assert sp.read(frames[598].pa, 1) == b"\0"
    with pytest.raises(AccessFault):
        sp.read(frames[599].pa, 1)
    assert sp.relinquish(handle)[0] == abi.FFA_SUCCESS_32
    assert hyp.call(abi.FFA_MEM_RECLAIM, handle, 0, 0)[0] == abi.FFA_SUCCESS_32
    assert spmc.invariant_problems() == []


def test_default_memory_service_fill_and_sum_through_the_spmc() -> None:
    spmc, hyp = make()
    frames = hyp.vm_pages(1, 3)
    for f in frames:
        hyp.m.mem.write(f.pa, b"\x01" * 4096, "d0")
    h = handle_of(hyp.send(SHARE, txn(1, [(0x8002, RW)], [(frames[0].pa, 3)])))
    r = hyp.direct(1, 0x8002, 2, h, 0, 0, 0)
    assert r[3:5] == (0, 3 * 4096)
    r = hyp.direct(1, 0x8002, 1, h, 0, 0x1A7, 0)
    assert r[3] == 0
    assert hyp.m.mem.read(frames[2].pa + 4095, 1, "d0") == b"\xa7"
    assert hyp.direct(1, 0x8002, 2, h, 0, 0, 0)[4] == 0xA7 * 3 * 4096
    assert hyp.call(abi.FFA_MEM_RECLAIM, h, 0, 0)[0] == abi.FFA_SUCCESS_32
    # A handle the service cannot retrieve: w3 carries the error code.
    assert hyp.direct(1, 0x8002, 2, h, 0, 0, 0)[3] == abi.to_u32(INVALID)
    assert spmc.invariant_problems() == []


def test_memory_service_lend_read_only_cannot_fill() -> None:
    _spmc, hyp = make()
    (page,) = hyp.vm_pages(1, 1)
    h = handle_of(hyp.send(LEND, txn(1, [(0x8002, RO)], [(page.pa, 1)], attrs=0)))
    assert hyp.direct(1, 0x8002, 1, h, 0, 5, 0)[3] == abi.to_u32(DENIED)
    assert hyp.direct(1, 0x8002, 2, h, 0, 0, 0)[3] == 0
    assert hyp.call(abi.FFA_MEM_RECLAIM, h, 0, 0)[0] == abi.FFA_SUCCESS_32


def test_reclaim_with_clear_zeroes_pages_and_lend_clear_zeroes_on_send() -> None:
    _spmc, hyp, sp, frames = setup()
    h = handle_of(send(hyp, SHARE, frames))
    assert hyp.call(abi.FFA_MEM_RECLAIM, h, 0, 1)[0] == abi.FFA_SUCCESS_32
    assert hyp.m.mem.read(frames[0].pa, 4, "d0") == bytes(4)
    hyp.m.mem.write(frames[1].pa, b"\x55" * 8, "d0")
    h = handle_of(send(hyp, LEND, frames, flags=1))
    assert hyp.m.mem.read(frames[1].pa, 8, "d0") == bytes(8)
    r = sp.retrieve(1, h, RW | NX, flags=1)
    assert r[0] == abi.FFA_MEM_RETRIEVE_RESP
    assert parse_response(sp.read(sp.rx, r[2]))[0] & 1


def test_relinquish_clear_zeroes_lent_pages() -> None:
    _spmc, hyp, sp, frames = setup(1)
    h = handle_of(send(hyp, LEND, frames))
    sp.retrieve(1, h, RW | NX)
    sp.smc(abi.FFA_RX_RELEASE)
    sp.write(frames[0].pa, b"\x77" * 16)
    assert sp.relinquish(h, flags=1)[0] == abi.FFA_SUCCESS_32
    assert hyp.m.mem.read(frames[0].pa, 16, "d0") == bytes(16)


def test_partition_to_partition_lend_and_reclaim() -> None:
    owner = SecurePartition(0x8001, "bbbbbbbb-0000-0000-0000-000000000001", properties=0x10B)
    sp = Borrower()
    spmc, hyp = make([owner, sp])
    page = owner.pages[0]
    owner.write(page, b"secret")
    desc = txn(0x8001, [(0x8002, RW)], [(page, 1)], attrs=0)
    owner.write(owner.tx, desc)
    h = handle_of(owner.smc(LEND, len(desc), len(desc)))
    with pytest.raises(AccessFault):
        owner.read(page, 1)  # lent away
    r = sp.retrieve(0x8001, h, RW | NX)
    assert r[0] == abi.FFA_MEM_RETRIEVE_RESP
    assert not parse_response(sp.read(sp.rx, r[2]))[1] & abi.FFA_MEM_ATTR_NS
    assert sp.read(page, 6) == b"secret"
    sp.smc(abi.FFA_RX_RELEASE)
    assert code(hyp.call(abi.FFA_MEM_RECLAIM, h, 0, 0)) == INVALID  # not the hypervisor's
    assert code(sp.smc(abi.FFA_MEM_RECLAIM, h, 0, 0)) == INVALID  # not the sender
    assert sp.relinquish(h)[0] == abi.FFA_SUCCESS_32
    assert owner.smc(abi.FFA_MEM_RECLAIM, h, 0, 0)[0] == abi.FFA_SUCCESS_32
    assert owner.read(page, 6) == b"secret"
    assert spmc.invariant_problems() == []


def test_partition_cannot_send_to_vm_or_memory_it_does_not_own() -> None:
    owner = SecurePartition(0x8001, "bbbbbbbb-0000-0000-0000-000000000001")
    _spmc, _hyp = make([owner, Borrower()])
    desc = txn(0x8001, [(1, RW)], [(owner.pages[0], 1)])
    owner.write(owner.tx, desc)
    assert code(owner.smc(SHARE, len(desc), len(desc))) == DENIED
    desc = txn(0x8001, [(0x8002, RW)], [(owner.rx, 1)])
    owner.write(owner.tx, desc)
    assert code(owner.smc(SHARE, len(desc), len(desc))) == DENIED
    desc = txn(0x8002, [(0x8002, RW)], [(owner.pages[0], 1)])
    owner.write(owner.tx, desc)
    assert code(owner.smc(SHARE, len(desc), len(desc))) == DENIED  # sender field is not caller


def test_multi_borrower_share_with_vm_and_hypervisor_retrieve() -> None:
    spmc, hyp, _sp, frames = setup()
    h = handle_of(send(hyp, SHARE, frames, receivers=[(0x8002, RW), (2, RO)]))
    # The hypervisor retrieves the whole transaction (every EMAD) with a bare header.
    req = struct.pack("<HHIQQIII", 0, 0, 0, h, 0, 0, 0, 0) + bytes(12)
    hyp.write_tx(req)
    r = hyp.call(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req))
    assert r[0] == abi.FFA_MEM_RETRIEVE_RESP
    data = hyp.read_rx(r[2])
    assert struct.unpack_from("<III", data, 24)[1] == 2
    assert hyp.call(abi.FFA_RX_RELEASE, 0)[0] == abi.FFA_SUCCESS_32
    # The hypervisor retrieves for the VM borrower: no SPMC page-table change.
    req = retrieve_req(1, h, [(0x8002, RW), (2, RO)])
    hyp.write_tx(req)
    r = hyp.call(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req))
    assert r[0] == abi.FFA_MEM_RETRIEVE_RESP
    assert parse_response(hyp.read_rx(r[2]))[2] == RO | NX
    hyp.call(abi.FFA_RX_RELEASE, 0)
    assert spmc.shares[h].retrieved == {0x8002: False, 2: True}
    assert code(hyp.call(abi.FFA_MEM_RECLAIM, h, 0, 0)) == DENIED
    hyp.write_tx(relinquish_desc(h, [2]))
    assert hyp.call(abi.FFA_MEM_RELINQUISH)[0] == abi.FFA_SUCCESS_32
    assert hyp.call(abi.FFA_MEM_RECLAIM, h, 0, 0)[0] == abi.FFA_SUCCESS_32


# -- send errors, in Hafnium's order -------------------------------------------------------


def test_send_register_errors() -> None:
    _, hyp, _, frames = setup()
    desc = txn(1, [(0x8002, RW)], [(frames[0].pa, 1)])
    hyp.write_tx(desc)
    assert code(hyp.call(SHARE, len(desc), len(desc), 0x1000, 0)) == INVALID
    assert code(hyp.call(SHARE, len(desc), len(desc), 0, 1)) == INVALID
    assert code(hyp.call(SHARE, len(desc), len(desc) + 16)) == INVALID
    assert code(hyp.call(SHARE, 8192, 8192)) == INVALID  # fragment longer than the TX
    _, hyp = make(map_buffers=False)
    assert code(hyp.call(SHARE, len(desc), len(desc))) == INVALID  # no TX


def _sent(hyp: Hyp, fid: int, desc: bytes) -> int:
    return code(hyp.send(fid, desc))


def test_sanity_check_errors_are_invalid() -> None:
    _, hyp, _, frames = setup()
    pa = frames[0].pa
    good = bytearray(txn(1, [(0x8002, RW)], [(pa, 1)]))

    def mutate(off: int, fmt: str, value: int) -> bytes:
        buf = bytearray(good)
        struct.pack_into(fmt, buf, off, value)
        return bytes(buf)

    assert _sent(hyp, SHARE, good[:40]) == INVALID  # shorter than the header
    assert _sent(hyp, SHARE, mutate(40, "<I", 1)) == INVALID  # reserved header bytes
    assert _sent(hyp, SHARE, mutate(24, "<I", 24)) == INVALID  # EMAD size
    assert _sent(hyp, SHARE, mutate(32, "<I", 32)) == INVALID  # EMAD offset < 48
    assert _sent(hyp, SHARE, mutate(28, "<I", 0)) == INVALID  # no EMAD
    assert _sent(hyp, SHARE, mutate(28, "<I", 3)) == INVALID  # > 2 EMADs
    assert _sent(hyp, SHARE, mutate(52, "<I", 0)) == INVALID  # composite offset 0
    assert _sent(hyp, SHARE, mutate(52, "<I", 48)) == INVALID  # composite inside EMADs
    v11 = txn(1, [(0x8002, RW)], [(pa, 1)], version=abi.FFA_VERSION_1_1)
    _, hyp11 = make(version=abi.FFA_VERSION_1_1)
    assert _sent(hyp11, SHARE, txn(1, [(0x8002, RW)], [(pa, 1)])) == INVALID  # 32-byte EMAD
    bad = bytearray(v11)
    struct.pack_into("<Q", bad, 56, 1)  # v1.1 EMAD reserved field
    assert _sent(hyp11, SHARE, bytes(bad)) == INVALID


def test_send_flag_receiver_and_world_errors() -> None:
    _, hyp, _, frames = setup()
    pa = frames[0].pa
    assert _sent(hyp, SHARE, txn(1, [(0x8002, RW)], [(pa, 1)], flags=1)) == INVALID
    assert _sent(hyp, LEND, txn(1, [(0x8002, RW)], [(pa, 1)], attrs=0, flags=4)) == INVALID
    assert _sent(hyp, LEND, txn(1, [(0x8002, RW)], [(pa, 1)], attrs=0, flags=2)) == INVALID
    two = [(0x8002, 0), (0x8001, 0)]
    assert _sent(hyp, DONATE, txn(1, two, [(pa, 1)], attrs=0)) == INVALID
    assert _sent(hyp, SHARE, txn(1, [(0x8009, RW)], [(pa, 1)])) == INVALID  # unknown SP
    assert _sent(hyp, SHARE, txn(1, [(0, RW)], [(pa, 1)])) == INVALID  # receiver = caller
    assert _sent(hyp, SHARE, txn(1, [(2, RW)], [(pa, 1)])) == DENIED  # VM -> single VM
    assert _sent(hyp, LEND, txn(1, [(0x8002, RW), (2, RW)], [(pa, 1)])) == DENIED
    assert _sent(hyp, SHARE, txn(0x8001, [(0x8002, RW)], [(pa, 1)])) == DENIED  # SP sender


def test_send_validate_errors() -> None:
    _, hyp, _, frames = setup()
    pa = frames[0].pa
    r = [(0x8002, RW)]
    # Receiver = sender: with one borrower the world rule (VM to VM) refuses it first.
    assert _sent(hyp, SHARE, txn(1, [(1, RW)], [(pa, 1)])) == DENIED
    assert _sent(hyp, SHARE, txn(1, [(0x8002, RW), (1, RW)], [(pa, 1)])) == INVALID
    assert _sent(hyp, SHARE, txn(1, [(0x8002, RW), (0x8002, RW)], [(pa, 1)])) == INVALID
    assert _sent(hyp, SHARE, txn(1, [(0x8002, 3)], [(pa, 1)])) == INVALID  # reserved access
    assert _sent(hyp, SHARE, txn(1, [(0x8002, RW | NX)], [(pa, 1)])) == INVALID  # instr
    assert _sent(hyp, SHARE, txn(1, [(0x8002, 0)], [(pa, 1)])) == INVALID  # data unspecified
    assert _sent(hyp, DONATE, txn(1, [(0x8002, RW)], [(pa, 1)], attrs=0)) == INVALID
    assert _sent(hyp, SHARE, txn(1, r, [(pa, 1)], attrs=0x6F)) == INVALID  # NS bit
    assert _sent(hyp, LEND, txn(1, r, [(pa, 1)], attrs=0x2F)) == INVALID  # type on 1-lend
    assert _sent(hyp, SHARE, txn(1, r, [(pa, 1)], attrs=0x27)) == DENIED  # not write-back
    assert _sent(hyp, SHARE, txn(1, r, [(pa, 1)], attrs=0x2E)) == DENIED  # outer shareable
    assert _sent(hyp, SHARE, txn(1, r, [(pa, 1)], attrs=0x17)) == DENIED  # device nGnRE
    h = handle_of(hyp.send(SHARE, txn(1, r, [(pa, 1)], attrs=0x13)))  # device nGnRnE
    assert hyp.call(abi.FFA_MEM_RECLAIM, h, 0, 0)[0] == abi.FFA_SUCCESS_32
    desc = txn(1, r, [(pa, 1)])
    assert code(hyp.send(SHARE, desc + bytes(16))) == INVALID  # total != constituents
    assert code(hyp.send(SHARE, desc + bytes(8))) == INVALID  # not a multiple of 16


def test_send_constituent_errors() -> None:
    spmc, hyp, _, frames = setup(3)
    a, b = frames[0].pa, frames[1].pa
    r = [(0x8002, RW)]
    assert _sent(hyp, SHARE, txn(1, r, [(a, 2), (b, 1)])) == INVALID  # overlap
    assert _sent(hyp, SHARE, txn(1, r, [(a, 1)], total_pages=2)) == INVALID  # page sum
    assert _sent(hyp, SHARE, txn(1, r, [(a + 8, 1)])) == INVALID  # unaligned
    assert _sent(hyp, SHARE, txn(1, r, [(0x1000, 1)])) == DENIED  # not NS DRAM
    secure = spmc.partitions[0x8002].pages[0]
    assert _sent(hyp, SHARE, txn(1, r, [(secure, 1)])) == DENIED
    h = handle_of(hyp.send(SHARE, txn(1, r, [(a, 1)])))
    assert _sent(hyp, SHARE, txn(1, r, [(a, 1)])) == DENIED  # already shared
    assert spmc.shares.keys() == {h}  # failures free their share state
    assert spmc.invariant_problems() == []


def test_handles_are_first_free_slots_and_run_out_at_100() -> None:
    _spmc, hyp, _, _ = setup()
    frames = hyp.vm_pages(1, 101)
    handles = [handle_of(send(hyp, SHARE, [f])) for f in frames[:100]]
    assert handles == list(range(100))
    assert code(send(hyp, SHARE, [frames[100]])) == abi.FFA_RET_NO_MEMORY
    assert hyp.call(abi.FFA_MEM_RECLAIM, 42, 0, 0)[0] == abi.FFA_SUCCESS_32
    assert handle_of(send(hyp, SHARE, [frames[100]])) == 42


# -- fragments -----------------------------------------------------------------------------


def _fragmented(hyp: Hyp, frames: list[Frame]) -> tuple[bytes, int]:
    consts = [(frames[2 * i].pa, 1) for i in range(len(frames) // 2)]
    desc = txn(1, [(0x8002, RW)], consts)
    r = hyp.send(SHARE, desc, frag=96 + 16)
    assert r[0] == abi.FFA_MEM_FRAG_RX and r[3] == 112
    return desc, abi.make_handle(r[1], r[2])


def test_frag_tx_errors_and_twenty_fragment_limit() -> None:
    spmc, hyp, sp, _ = setup()
    frames = hyp.vm_pages(1, 60)
    desc, h = _fragmented(hyp, frames)
    assert code(hyp.call(abi.FFA_MEM_FRAG_TX, h, 0, 8, 1 << 16)) == INVALID  # < 16
    assert code(hyp.call(abi.FFA_MEM_FRAG_TX, h, 0, 24, 1 << 16)) == INVALID  # not x16
    assert code(hyp.call(abi.FFA_MEM_FRAG_TX, h, 0, 8192, 1 << 16)) == INVALID  # > buffer
    assert code(hyp.call(abi.FFA_MEM_FRAG_TX, h + 1, 0, 16, 1 << 16)) == INVALID  # unknown
    assert code(hyp.call(abi.FFA_MEM_FRAG_TX, h, 1 << 31, 16, 1 << 16)) == INVALID  # hyp bit
    assert code(sp.smc(abi.FFA_MEM_FRAG_TX, h, 0, 16, 0)) == INVALID  # not the sender
    assert code(sp.smc(abi.FFA_MEM_FRAG_TX, h, 0, 16, 1 << 16)) == INVALID  # w4 from SP
    assert code(hyp.call(abi.FFA_MEM_RECLAIM, h, 0, 0)) == INVALID  # incomplete
    offset = 112
    for i in range(18):
        hyp.write_tx(desc[offset : offset + 16])
        r = hyp.call(abi.FFA_MEM_FRAG_TX, h, 0, 16, 1 << 16)
        offset += 16
        assert r[0] == abi.FFA_MEM_FRAG_RX and r[3] == offset, i
    hyp.write_tx(desc[offset : offset + 16])
    r = hyp.call(abi.FFA_MEM_FRAG_TX, h, 0, 16, 1 << 16)
    assert r[0] == abi.FFA_MEM_FRAG_RX  # the 20th fragment
    assert code(hyp.call(abi.FFA_MEM_FRAG_TX, h, 0, 16, 1 << 16)) == abi.FFA_RET_NO_MEMORY
    assert h not in spmc.shares  # discarded
    assert spmc.invariant_problems() == []


def test_frag_tx_completion_checks_constituents_and_frees_on_failure() -> None:
    spmc, hyp, _, _ = setup()
    frames = hyp.vm_pages(1, 4)
    consts = [(frames[0].pa, 1), (frames[0].pa, 1)]  # overlapping, seen only at completion
    desc = txn(1, [(0x8002, RW)], consts)
    r = hyp.send(SHARE, desc, frag=112)
    h = abi.make_handle(r[1], r[2])
    hyp.write_tx(desc[112:])
    assert code(hyp.call(abi.FFA_MEM_FRAG_TX, h, 0, 16, 1 << 16)) == INVALID
    assert spmc.shares == {}


def test_fragmented_share_with_vm_borrower_is_invalid() -> None:
    _, hyp, _, _ = setup()
    frames = hyp.vm_pages(1, 4)
    desc = txn(1, [(0x8002, RW), (2, RW)], [(frames[0].pa, 1), (frames[2].pa, 1)])
    r = hyp.send(SHARE, desc, frag=len(desc) - 16)
    assert r[0] == abi.FFA_MEM_FRAG_RX
    hyp.write_tx(desc[-16:])
    h = abi.make_handle(r[1], r[2])
    assert code(hyp.call(abi.FFA_MEM_FRAG_TX, h, 0, 16, 1 << 16)) == INVALID


# -- retrieve errors -----------------------------------------------------------------------


def test_retrieve_errors() -> None:
    spmc, hyp, sp, frames = setup()
    h = handle_of(send(hyp, SHARE, frames))
    req = retrieve_req(1, h, [(0x8002, RW)])
    sp.write(sp.tx, req)
    assert code(sp.smc(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req), 1)) == INVALID
    assert code(sp.smc(abi.FFA_MEM_RETRIEVE_REQ_64, len(req) + 16, len(req))) == INVALID
    assert code(sp.retrieve(1, h | 1 << 63, RW)) == INVALID  # hypervisor-allocated handle
    assert code(sp.retrieve(1, h + 5, RW)) == INVALID  # unknown
    assert code(sp.retrieve(2, h, RW)) == DENIED  # wrong sender
    assert code(sp.retrieve(1, h, RW, tag=3)) == INVALID
    assert code(sp.retrieve(1, h, RW, flags=2 << 3)) == INVALID  # type lend
    assert code(sp.retrieve(1, h, RW, flags=1 << 9)) == INVALID  # hint valid
    assert code(sp.retrieve(1, h, RW, flags=1 << 5)) == INVALID  # hint
    assert code(sp.retrieve(1, h, RW, flags=1 << 11)) == INVALID  # MBZ
    assert code(sp.retrieve(1, h, RW, flags=1)) == INVALID  # clear on a share
    assert code(sp.retrieve(1, h, RW, attrs=0x40)) == INVALID  # NS bit
    assert code(sp.retrieve(1, h, RW, attrs=0x27)) == DENIED  # not write-back
    assert code(sp.retrieve(1, h, RW | NX)) == INVALID  # instruction access on a share
    # A request whose EMAD carries a composite offset fails the sanity check.
    bad = bytearray(req)
    struct.pack_into("<I", bad, 52, 80)
    sp.write(sp.tx, bytes(bad))
    assert code(sp.smc(abi.FFA_MEM_RETRIEVE_REQ_64, len(bad), len(bad))) == INVALID
    # A caller the transaction does not name.
    other = spmc.partitions[0x8001]
    req = retrieve_req(1, h, [(0x8001, RW)])
    other.write(other.tx, req)
    assert code(other.smc(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req))) == INVALID
    assert sp.retrieve(1, h, RW)[0] == abi.FFA_MEM_RETRIEVE_RESP
    assert code(sp.retrieve(1, h, RW)) == abi.FFA_RET_BUSY  # RX still full
    sp.smc(abi.FFA_RX_RELEASE)
    assert code(sp.retrieve(1, h, RW)) == DENIED  # already retrieved
    assert spmc.invariant_problems() == []


def test_retrieve_permission_rules() -> None:
    _spmc, hyp, sp, frames = setup()
    h = handle_of(send(hyp, LEND, frames, receivers=[(0x8002, RO)]))
    assert code(sp.retrieve(1, h, RW | NX)) == DENIED  # more than granted
    assert code(sp.retrieve(1, h, RO)) == INVALID  # single lend: instruction access needed
    assert code(sp.retrieve(1, h, RO | (2 << 2))) == INVALID  # executable NS memory
    assert code(sp.retrieve(1, h, RO | NX, flags=4)) == DENIED  # RO borrower asks to clear
    assert code(sp.retrieve(1, h, RO | NX, flags=1)) == DENIED  # sender did not clear
    r = sp.retrieve(1, h, NX)  # data access not specified: granted as stored
    assert parse_response(sp.read(sp.rx, r[2]))[2] == RO | NX
    with pytest.raises(AccessFault):
        sp.write(frames[0].pa, b"x")
    sp.smc(abi.FFA_RX_RELEASE)
    assert code(sp.relinquish(h, flags=1)) == DENIED  # RO borrower clears
    assert sp.relinquish(h)[0] == abi.FFA_SUCCESS_32


def test_hypervisor_retrieve_request_errors() -> None:
    _spmc, hyp, _, frames = setup()
    h = handle_of(send(hyp, SHARE, frames))
    bare = struct.pack("<HHIQQIII", 0, 0, 0, h, 0, 0, 0, 0) + bytes(12)
    for off, fmt, val in ((0, "<H", 1), (16, "<Q", 1), (24, "<I", 16), (32, "<I", 48)):
        buf = bytearray(bare)
        struct.pack_into(fmt, buf, off, val)
        hyp.write_tx(bytes(buf))
        assert code(hyp.call(abi.FFA_MEM_RETRIEVE_REQ_64, 48, 48)) == INVALID, off
    buf = bytearray(bare)
    struct.pack_into("<Q", buf, 8, h | 1 << 63)
    hyp.write_tx(bytes(buf))
    assert code(hyp.call(abi.FFA_MEM_RETRIEVE_REQ_64, 48, 48)) == INVALID


def test_hypervisor_retrieve_of_two_vm_borrowers_not_supported() -> None:
    _spmc, hyp, _, frames = setup()
    h = handle_of(send(hyp, SHARE, frames, receivers=[(2, RW), (3, RW)]))
    req = retrieve_req(1, h, [(2, RW), (3, RW)])
    hyp.write_tx(req)
    r = hyp.call(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req))
    assert code(r) == abi.FFA_RET_NOT_SUPPORTED


def test_bypass_flag_rules() -> None:
    _spmc, hyp, sp, frames = setup()
    h = handle_of(send(hyp, SHARE, frames, receivers=[(0x8002, RW), (0x8001, RW)]))
    assert code(sp.retrieve(1, h, RW)) == INVALID  # one EMAD for a two-borrower share
    req = retrieve_req(1, h, [(0x8002, RW), (0x8003, RW)])
    sp.write(sp.tx, req)
    r = sp.smc(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req))
    assert code(r) == DENIED  # lists a borrower the transaction does not name
    req = retrieve_req(1, h, [(0x8001, RW), (0x8001, RW)])
    sp.write(sp.tx, req)
    r = sp.smc(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req))
    assert code(r) == INVALID  # the caller's own EMAD is missing
    r = sp.retrieve(1, h, RW, flags=1 << 10)
    assert r[0] == abi.FFA_MEM_RETRIEVE_RESP
    h2 = handle_of(send(hyp, SHARE, hyp.vm_pages(1, 1)))
    sp.smc(abi.FFA_RX_RELEASE)
    assert code(sp.retrieve(1, h2, RW, flags=1 << 10)) == INVALID  # single borrower


# -- relinquish and reclaim errors ---------------------------------------------------------


def test_relinquish_errors() -> None:
    spmc, hyp, sp, frames = setup()
    h = handle_of(send(hyp, SHARE, frames))
    sp.write(sp.tx, relinquish_desc(h, [0x8002, 0x8001]))
    assert code(sp.smc(abi.FFA_MEM_RELINQUISH)) == INVALID  # two endpoints
    sp.write(sp.tx, relinquish_desc(h, [0x8001]))
    assert code(sp.smc(abi.FFA_MEM_RELINQUISH)) == INVALID  # another endpoint
    assert code(sp.relinquish(h + 9)) == INVALID  # unknown handle
    assert code(sp.relinquish(h)) == INVALID  # not retrieved
    other = spmc.partitions[0x8001]
    other.write(other.tx, relinquish_desc(h, [0x8001]))
    assert code(other.smc(abi.FFA_MEM_RELINQUISH)) == INVALID  # not a borrower
    sp.retrieve(1, h, RW)
    sp.smc(abi.FFA_RX_RELEASE)
    assert code(sp.relinquish(h, flags=1)) == INVALID  # clear on a share
    hyp.write_tx(relinquish_desc(h, [0x8002]))
    assert code(hyp.call(abi.FFA_MEM_RELINQUISH)) == INVALID  # hypervisor names a partition
    sp.smc(abi.FFA_RXTX_UNMAP)
    assert code(sp.smc(abi.FFA_MEM_RELINQUISH)) == INVALID  # no TX


def test_reclaim_errors() -> None:
    _, hyp, _sp, frames = setup()
    h = handle_of(send(hyp, SHARE, frames))
    assert code(hyp.call(abi.FFA_MEM_RECLAIM, h, 1 << 31, 0)) == INVALID  # hyp handle
    assert code(hyp.call(abi.FFA_MEM_RECLAIM, h + 3, 0, 0)) == INVALID
    # Flag bits other than bit 0 (clear) are ignored, as in Hafnium.
    assert hyp.call(abi.FFA_MEM_RECLAIM, h, 0, 4)[0] == abi.FFA_SUCCESS_32
    assert code(hyp.call(abi.FFA_MEM_RECLAIM, h, 0, 0)) == INVALID  # already reclaimed


def test_v1_0_caller_layout_round_trip() -> None:
    sp = Borrower()
    _spmc, hyp = make([sp], version=abi.FFA_VERSION_1_0)
    (page,) = hyp.vm_pages(1, 1)
    desc = txn(1, [(0x8002, RW)], [(page.pa, 1)], version=abi.FFA_VERSION_1_0)
    assert len(desc) == 32 + 16 + 16 + 16
    h = handle_of(hyp.send(SHARE, desc))
    # The hypervisor retrieve response comes back in the v1.0 layout too.
    bare = struct.pack("<HBBIQQII", 0, 0, 0, 0, h, 0, 0, 0)
    hyp.write_tx(bare)
    r = hyp.call(abi.FFA_MEM_RETRIEVE_REQ_64, 32, 32)
    assert r[0] == abi.FFA_MEM_RETRIEVE_RESP and r[1] == len(desc)
    data = hyp.read_rx(r[1])
    assert struct.unpack_from("<Q", data, 32 + 16 + 16)[0] == page.pa
    assert sp.retrieve(1, h, RW)[0] == abi.FFA_MEM_RETRIEVE_RESP


def test_borrower_access_outside_retrieved_pages_faults() -> None:
    def handler(sp: SecurePartition, msg: DirectMessage) -> tuple[int, ...]:
        sp.read(msg.payload[0], 1)
        return ()

    sp = SecurePartition(0x8001, "bbbbbbbb-0000-0000-0000-000000000001", handler=handler)
    _, hyp = make([sp])
    (page,) = hyp.vm_pages(1, 1)
    with pytest.raises(AccessFault):
        hyp.direct(1, 0x8001, page.pa)


def test_memory_service_speaks_v1_1_on_a_v1_1_spmc() -> None:
    m = Machine()
    spmc = Spmc(m, default_partitions(), version=abi.FFA_VERSION_1_1)
    assert spmc.partitions[0x8002].ffa_version == abi.FFA_VERSION_1_1
    hyp = Hyp(spmc)
    (page,) = hyp.vm_pages(1, 1)
    hyp.m.mem.write(page.pa, b"\x02" * 4096, "d0")
    desc = txn(1, [(0x8002, RW)], [(page.pa, 1)], version=abi.FFA_VERSION_1_1)
    h = handle_of(hyp.send(SHARE, desc))
    assert hyp.direct(1, 0x8002, 2, h, 0, 0, 0)[3:5] == (0, 2 * 4096)
    assert hyp.call(abi.FFA_MEM_RECLAIM, h, 0, 0)[0] == abi.FFA_SUCCESS_32
