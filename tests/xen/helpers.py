"""Guest-side helpers for the mediator tests: version, buffers, share descriptors, faults."""

from __future__ import annotations

import struct
from collections.abc import Iterable

from ffasim import abi
from ffasim.machine import EventSink
from ffasim.system import VM

TX_PAGE = 0
RX_PAGE = 1


def code(r: abi.Regs) -> int:
    """0 for FFA_SUCCESS_32/64, the FF-A error code for FFA_ERROR; fails on anything else."""
    if abi.is_error(r):
        return abi.error_code(r)
    assert r[0] in (abi.FFA_SUCCESS_32, abi.FFA_SUCCESS_64), abi.describe(r)
    return 0


def negotiate(vm: VM, vers: int = abi.FFA_VERSION_1_2) -> None:
    """FFA_VERSION then FFA_ID_GET, which makes the version final."""
    vm.smc(abi.FFA_VERSION, vers)
    assert code(vm.smc(abi.FFA_ID_GET)) == 0


def map_rxtx(vm: VM, tx: int = TX_PAGE, rx: int = RX_PAGE) -> abi.Regs:
    return vm.smc(abi.FFA_RXTX_MAP_64, vm.ipa(tx), vm.ipa(rx), 1)


def ready(vm: VM, vers: int = abi.FFA_VERSION_1_2) -> VM:
    negotiate(vm, vers)
    assert code(map_rxtx(vm)) == 0
    return vm


def share_descriptor(
    sender: int,
    receiver: int,
    ranges: Iterable[tuple[int, int]],
    *,
    total: int | None = None,
    attr: int = abi.FFA_NORMAL_MEM_REG_ATTR,
    perm: int = abi.FFA_MEM_ACC_RW,
    emad_size: int = 16,
    emad_count: int = 1,
    emad_offs: int = 48,
    region_offs: int | None = None,
    flags: int = 0,
    tag: int = 0,
) -> bytes:
    """A v1.1+ memory transaction descriptor for FFA_MEM_SHARE (one EMAD, one composite)."""
    ranges = list(ranges)
    if total is None:
        total = sum(n for _, n in ranges)
    if region_offs is None:
        region_offs = emad_offs + emad_size * emad_count
    hdr = struct.pack(
        "<HHIQQIII12s", sender, attr, flags, 0, tag, emad_size, emad_count, emad_offs, bytes(12)
    )
    emad = struct.pack("<HBBIQ", receiver, perm, 0, region_offs, 0).ljust(emad_size, b"\0")
    body = bytearray(hdr.ljust(emad_offs, b"\0"))
    body += emad * emad_count
    body = body.ljust(region_offs, b"\0")
    body += struct.pack("<IIQ", total, len(ranges), 0)
    for addr, n in ranges:
        body += struct.pack("<QII", addr, n, 0)
    return bytes(body)


def share_descriptor_v1_0(sender: int, receiver: int, ranges: list[tuple[int, int]]) -> bytes:
    """A v1.0 descriptor: 32-byte header, EMAD at 32, composite at 48."""
    total = sum(n for _, n in ranges)
    hdr = struct.pack("<HBBIQQII", sender, abi.FFA_NORMAL_MEM_REG_ATTR, 0, 0, 0, 0, 0, 1)
    emad = struct.pack("<HBBIQ", receiver, abi.FFA_MEM_ACC_RW, 0, 48, 0)
    body = hdr + emad + struct.pack("<IIQ", total, len(ranges), 0)
    for addr, n in ranges:
        body += struct.pack("<QII", addr, n, 0)
    return body


def mem_share(vm: VM, desc: bytes, fid: int = abi.FFA_MEM_SHARE_64) -> abi.Regs:
    vm.write(vm.ipa(TX_PAGE), desc)
    return vm.smc(fid, len(desc), len(desc), 0, 0)


def share_pages(vm: VM, first: int, count: int, receiver: int = 0x8002) -> int:
    """Share ``count`` pages from RAM page ``first`` with ``receiver``; the handle."""
    r = mem_share(vm, share_descriptor(vm.id, receiver, [(vm.ipa(first), count)]))
    assert code(r) == 0, abi.describe(r)
    return abi.make_handle(r[2], r[3])


def reclaim(vm: VM, handle: int, flags: int = 0) -> abi.Regs:
    return vm.smc(abi.FFA_MEM_RECLAIM, abi.handle_lo(handle), abi.handle_hi(handle), flags)


class FaultSink(EventSink):
    """Injects faults at named sites: ``faults[site]`` is a code (every time) or a list of codes
    (consumed one per hit; ``None`` entries run normally). Records violations and log lines."""

    def __init__(self, faults: dict[str, int | list[int | None]] | None = None) -> None:
        self.faults: dict[str, int | list[int | None]] = dict(faults or {})
        self.violations: list[tuple[str, str]] = []
        self.logs: list[str] = []
        self.hits: list[str] = []

    def fault(self, site: str, choices: tuple[int, ...]) -> int | None:
        plan = self.faults.get(site)
        if plan is None:
            return None
        if isinstance(plan, list):
            if not plan:
                return None
            c = plan.pop(0)
        else:
            c = plan
        if c is not None:
            self.hits.append(site)
        return c

    def violation(self, kind: str, message: str) -> None:
        self.violations.append((kind, message))

    def log(self, ctx: str, text: str) -> None:
        self.logs.append(text)
