"""Memory-sharing paths the main cycle tests do not reach: hypervisor retrieve continuations,
fragment bookkeeping errors, and the rarer retrieve refusals."""

from __future__ import annotations

import struct

from ffasim import abi

from .helpers import NX, RW, Hyp, code, handle_of, make, retrieve_req, txn

SHARE, LEND = abi.FFA_MEM_SHARE_64, abi.FFA_MEM_LEND_64
INVALID, DENIED = abi.FFA_RET_INVALID_PARAMETERS, abi.FFA_RET_DENIED


def _big_share(hyp: Hyp, receivers: list[tuple[int, int]], n: int = 300) -> tuple[bytes, int]:
    frames = hyp.vm_pages(1, 2 * n)
    desc = txn(1, receivers, [(frames[2 * i].pa, 1) for i in range(n)])
    r = hyp.send(SHARE, desc, frag=4096)
    h = abi.make_handle(r[1], r[2])
    hyp.write_tx(desc[4096:])
    assert handle_of(hyp.call(abi.FFA_MEM_FRAG_TX, h, 0, len(desc) - 4096, 1 << 16)) == h
    return desc, h


def _bare(handle: int) -> bytes:
    return struct.pack("<HHIQQIII", 0, 0, 0, handle, 0, 0, 0, 0) + bytes(12)


def test_hypervisor_retrieve_request_continues_with_frag_rx() -> None:
    spmc, hyp = make()
    desc, h = _big_share(hyp, [(0x8002, RW)])
    hyp.write_tx(_bare(h))
    r = hyp.call(abi.FFA_MEM_RETRIEVE_REQ_64, 48, 48)
    assert r[0] == abi.FFA_MEM_RETRIEVE_RESP and r[1] == len(desc) and r[2] < r[1]
    data = hyp.read_rx(r[2])
    hyp.call(abi.FFA_RX_RELEASE, 0)
    hyp.write_tx(_bare(h))
    assert code(hyp.call(abi.FFA_MEM_RETRIEVE_REQ_64, 48, 48)) == DENIED  # one at a time
    assert code(hyp.call(abi.FFA_MEM_FRAG_RX, h, 0, len(data), 2 << 16)) == INVALID  # sender
    while len(data) < r[1]:
        f = hyp.call(abi.FFA_MEM_FRAG_RX, h, 0, len(data), 1 << 16)
        assert f[0] == abi.FFA_MEM_FRAG_TX and f[4] == 1 << 16
        data += hyp.read_rx(f[3])
        hyp.call(abi.FFA_RX_RELEASE, 0)
    # The hypervisor sees the sender's transaction back (with the transaction type set).
    assert data[48:] == desc[48:]
    assert struct.unpack_from("<I", data, 4)[0] == 1 << 3
    assert code(hyp.call(abi.FFA_MEM_FRAG_RX, h, 0, len(data), 1 << 16)) == INVALID
    assert hyp.call(abi.FFA_MEM_RECLAIM, h, 0, 0)[0] == abi.FFA_SUCCESS_32
    assert spmc.invariant_problems() == []


def test_frag_tx_bookkeeping_errors() -> None:
    spmc, hyp = make()
    frames = hyp.vm_pages(1, 4)
    desc = txn(1, [(0x8002, RW)], [(frames[0].pa, 1), (frames[2].pa, 1)])
    r = hyp.send(SHARE, desc, frag=len(desc) - 16)
    h = abi.make_handle(r[1], r[2])
    hyp.write_tx(desc[-16:])
    assert code(hyp.call(abi.FFA_MEM_FRAG_TX, h, 0, 16, 2 << 16)) == INVALID  # w4 sender
    assert handle_of(hyp.call(abi.FFA_MEM_FRAG_TX, h, 0, 16, 1 << 16)) == h
    assert code(hyp.call(abi.FFA_MEM_FRAG_TX, h, 0, 16, 1 << 16)) == INVALID  # complete
    # A fragment beyond the announced total discards the transaction.
    r = hyp.send(SHARE, txn(1, [(0x8002, RW)], [(frames[1].pa, 1), (frames[3].pa, 1)]), 96 + 16)
    h2 = abi.make_handle(r[1], r[2])
    assert code(hyp.call(abi.FFA_MEM_FRAG_TX, h2, 0, 32, 1 << 16)) == INVALID
    assert h2 not in spmc.shares
    hyp.call(abi.FFA_RXTX_UNMAP, 0)
    assert code(hyp.call(abi.FFA_MEM_FRAG_TX, h, 0, 16, 1 << 16)) == INVALID  # no TX


def test_v1_0_send_that_grows_past_a_page_is_not_supported() -> None:
    _, hyp = make(version=abi.FFA_VERSION_1_0)
    frames = hyp.vm_pages(1, 600)
    desc = txn(
        1,
        [(0x8002, RW)],
        [(frames[2 * i].pa, 1) for i in range(252)],
        version=abi.FFA_VERSION_1_0,
    )
    assert 4096 - 16 < len(desc) <= 4096
    assert code(hyp.send(SHARE, desc)) == abi.FFA_RET_NOT_SUPPORTED


def test_rarer_retrieve_refusals() -> None:
    spmc, hyp = make()
    sp = spmc.partitions[0x8002]
    frames = hyp.vm_pages(1, 2)
    h = handle_of(hyp.send(LEND, txn(1, [(0x8002, RW), (0x8001, RW)], [(frames[0].pa, 1)])))

    def ask(req: bytes, length: int | None = None) -> int:
        sp.write(sp.tx, req)
        n = len(req) if length is None else length
        return code(sp.smc(abi.FFA_MEM_RETRIEVE_REQ_64, n, n))

    both = [(0x8002, RW | NX), (0x8001, RW)]
    assert ask(retrieve_req(1, h, both)) == INVALID  # instruction access on a shared lend
    assert ask(retrieve_req(1, h, [(0x8002, RW | (3 << 2)), (0x8001, RW)])) == INVALID
    assert ask(retrieve_req(1, h, [(0x8002, RW), (0x8001, RW)]) + bytes(16)) == INVALID
    req = bytearray(retrieve_req(1, h, [(0x8002, RW), (0x8001, RW)]))
    req[48 + 8] = 1  # implementation-defined value differs from the sender's (zero)
    assert ask(bytes(req)) == INVALID
    assert spmc.shares[h].retrieved == {0x8002: False, 0x8001: False}


def test_retrieve_with_v1_1_emads_from_a_v1_2_partition_is_accepted() -> None:
    spmc, hyp = make()
    sp = spmc.partitions[0x8002]
    (page,) = hyp.vm_pages(1, 1)
    h = handle_of(hyp.send(SHARE, txn(1, [(0x8002, RW)], [(page.pa, 1)])))
    req = retrieve_req(1, h, [(0x8002, RW)], version=abi.FFA_VERSION_1_1)
    sp.write(sp.tx, req)
    r = sp.smc(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req))
    assert r[0] == abi.FFA_MEM_RETRIEVE_RESP
