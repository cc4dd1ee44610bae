"""Test helpers: a normal-world "hypervisor" driving the SPMC as endpoint 0, and descriptor
builders written independently of the SPMC's own encoders (struct layouts from the spec)."""

from __future__ import annotations

import struct

from ffasim import abi
from ffasim.machine import Frame, Machine
from ffasim.spmc import SecurePartition, Spmc, default_partitions

PAGE = 4096
RW = 0x2
RO = 0x1
NX = 0x1 << 2
ATTR_NORMAL_WB_INNER = 0x2F


def txn(
    sender: int,
    receivers: list[tuple[int, int]],
    constituents: list[tuple[int, int]],
    *,
    attrs: int = ATTR_NORMAL_WB_INNER,
    flags: int = 0,
    tag: int = 0,
    handle: int = 0,
    version: int = abi.FFA_VERSION_1_2,
    total_pages: int | None = None,
    emad_size: int | None = None,
) -> bytes:
    """A memory transaction descriptor (share/lend/donate) in ``version``'s layout."""
    count = len(receivers)
    if version < abi.FFA_VERSION_1_1:
        size, off = 16, 32
        head = struct.pack("<HBBIQQII", sender, attrs, 0, flags, handle, tag, 0, count)
    else:
        size = emad_size or (32 if version >= abi.FFA_VERSION_1_2 else 16)
        off = 48
        head = struct.pack("<HHIQQIII", sender, attrs, flags, handle, tag, size, count, off)
        head += bytes(12)
    comp = off + count * size
    out = bytearray(head)
    for rid, perms in receivers:
        emad = struct.pack("<HBBI", rid, perms, 0, comp)
        out += emad + bytes(size - len(emad))
    pages = sum(n for _, n in constituents) if total_pages is None else total_pages
    out += struct.pack("<IIQ", pages, len(constituents), 0)
    for addr, n in constituents:
        out += struct.pack("<QII", addr, n, 0)
    return bytes(out)


def retrieve_req(
    sender: int,
    handle: int,
    receivers: list[tuple[int, int]],
    *,
    flags: int = 0,
    tag: int = 0,
    attrs: int = 0,
    version: int = abi.FFA_VERSION_1_2,
) -> bytes:
    """A retrieve request: header plus EMADs with composite offset 0."""
    size = 32 if version >= abi.FFA_VERSION_1_2 else 16
    head = struct.pack("<HHIQQIII", sender, attrs, flags, handle, tag, size, len(receivers), 48)
    out = bytearray(head + bytes(12))
    for rid, perms in receivers:
        out += struct.pack("<HBBI", rid, perms, 0, 0) + bytes(size - 8)
    return bytes(out)


def relinquish_desc(handle: int, endpoints: list[int], flags: int = 0) -> bytes:
    return struct.pack("<QII", handle, flags, len(endpoints)) + b"".join(
        struct.pack("<H", e) for e in endpoints
    )


def rxtx_desc(vm_id: int, rx: int, tx: int, rx_off: int = 16, pages: int = 1) -> bytes:
    """The endpoint RX/TX descriptor the hypervisor forwards (Hafnium packing by default)."""
    tx_off = rx_off + 32
    out = bytearray(tx_off + 32)
    struct.pack_into("<HHII", out, 0, vm_id, 0, rx_off, tx_off)
    struct.pack_into("<IIQQII", out, rx_off, pages, 1, 0, rx, pages, 0)
    struct.pack_into("<IIQQII", out, tx_off, pages, 1, 0, tx, pages, 0)
    return bytes(out)


class Hyp:
    """The hypervisor side of the SMC: ID 0, its own RX/TX pages from the normal-world heap."""

    def __init__(self, spmc: Spmc, map_buffers: bool = True, version: int | None = None) -> None:
        self.spmc = spmc
        self.m = spmc.machine
        rx = self.m.heap.alloc_page("xen", tag="hyp rx")
        tx = self.m.heap.alloc_page("xen", tag="hyp tx")
        assert rx is not None and tx is not None
        self.rx_frame, self.tx_frame = rx, tx
        self.rx, self.tx = rx.pa, tx.pa
        if version is not None:
            assert self.call(abi.FFA_VERSION, version)[0] == spmc.version
        if map_buffers:
            assert abi.is_success(self.call(abi.FFA_RXTX_MAP_64, self.tx, self.rx, 1))

    def call(self, fid: int, *args: int) -> abi.Regs:
        return self.spmc.entry(0, abi.regs(fid, *args))

    def write_tx(self, data: bytes) -> None:
        self.m.mem.write(self.tx, data, "xen")

    def read_rx(self, n: int) -> bytes:
        return self.m.mem.read(self.rx, n, "xen")

    def vm_pages(self, vm_id: int, n: int) -> list[Frame]:
        frames = self.m.heap.alloc_contiguous(n, f"d{vm_id - 1}")
        assert frames is not None
        return frames

    def forward_rxtx(self, vm_id: int) -> tuple[Frame, Frame, abi.Regs]:
        rx, tx = self.vm_pages(vm_id, 2)
        self.write_tx(rxtx_desc(vm_id, rx.pa, tx.pa))
        return rx, tx, self.call(abi.FFA_RXTX_MAP_64, 0, 0, 0)

    def send(self, fid: int, desc: bytes, frag: int | None = None) -> abi.Regs:
        frag = len(desc) if frag is None else frag
        self.write_tx(desc[:frag])
        return self.call(fid, len(desc), frag, 0, 0)

    def share(
        self, vm_id: int, receivers: list[tuple[int, int]], pages: list[Frame], **kw: object
    ) -> abi.Regs:
        fid = kw.pop("fid", abi.FFA_MEM_SHARE_64)
        desc = txn(vm_id, receivers, [(f.pa, 1) for f in pages], **kw)  # type: ignore[arg-type]
        return self.send(fid, desc)  # type: ignore[arg-type]

    def direct(self, sender: int, receiver: int, *payload: int, fid: int = 0) -> abi.Regs:
        return self.call(
            fid or abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(sender, receiver), 0, *payload
        )


def code(r: abi.Regs) -> int:
    """The FF-A error code of ``r`` (asserting it is an error)."""
    assert abi.is_error(r), abi.describe(r)
    return abi.error_code(r)


def handle_of(r: abi.Regs) -> int:
    assert r[0] == abi.FFA_SUCCESS_32, abi.describe(r)
    return abi.make_handle(r[2], r[3])


def make(
    partitions: list[SecurePartition] | None = None,
    *,
    version: int | None = None,
    map_buffers: bool = True,
) -> tuple[Spmc, Hyp]:
    """An SPMC with the default (or given) partitions and a hypervisor that negotiated
    ``version`` (when given) and then mapped its RX/TX pair (when ``map_buffers``)."""
    m = Machine()
    spmc = Spmc(m, default_partitions() if partitions is None else partitions)
    return spmc, Hyp(spmc, map_buffers=map_buffers, version=version)
