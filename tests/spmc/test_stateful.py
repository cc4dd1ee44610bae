"""Random calls as the hypervisor and as partitions, with random and mutated buffers: every
answer is an 18-register tuple (never an exception) and the SPMC stays consistent."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ffasim import abi

from .helpers import NX, RO, RW, make, relinquish_desc, retrieve_req, rxtx_desc, txn

FIDS = [*sorted(abi.FUNCTION_IDS), 0x84000099, 0xC4000066]
MEM_FIDS = [abi.FFA_MEM_SHARE_64, abi.FFA_MEM_LEND_64, abi.FFA_MEM_DONATE_64]
ATTRS = {abi.FFA_MEM_SHARE_64: 0x2F, abi.FFA_MEM_LEND_64: 0, abi.FFA_MEM_DONATE_64: 0}
PERMS = {abi.FFA_MEM_SHARE_64: RW, abi.FFA_MEM_LEND_64: RW, abi.FFA_MEM_DONATE_64: 0}
SPS = [0x8001, 0x8002, 0x8003]
VMS = [1, 2, 3]


def _reg_values() -> st.SearchStrategy[int]:
    return st.one_of(
        st.integers(0, 4),
        st.sampled_from([0x8001, 0x8002, 0x8009, 1 << 16, 0x80010001, 0x80000004, 0xFFFFFFFF]),
        st.integers(0, abi.MASK64),
    )


class SpmcStateMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.spmc, self.hyp = make()
        self.pages = [f.pa for f in self.hyp.vm_pages(1, 6)] + [
            f.pa for f in self.hyp.vm_pages(2, 6)
        ]
        sp_pages = [p for sp in self.spmc.partitions.values() for p in sp.pages[:1]]
        self.addrs = self.pages + sp_pages + [self.hyp.rx, self.hyp.tx, 0x1000, self.pages[0] + 8]
        self.handles: list[int] = [0, 1, 1 << 63]
        # Transactions sent successfully: (handle, sender VM, fid, receivers).
        self.live: list[tuple[int, int, int, list[int]]] = []

    def check(self, r: abi.Regs) -> None:
        assert isinstance(r, tuple) and len(r) == abi.NUM_REGS
        assert all(isinstance(v, int) and 0 <= v <= abi.MASK64 for v in r)
        if r[0] == abi.FFA_SUCCESS_32 and r[2] < 100 and r[3] == 0:
            self.handles.append(r[2])

    # -- raw calls -----------------------------------------------------------------------
    @rule(fid=st.sampled_from(FIDS), args=st.lists(_reg_values(), max_size=8))
    def hyp_raw_call(self, fid: int, args: list[int]) -> None:
        if fid == abi.FFA_VERSION:
            args = args[:1]
        self.check(self.hyp.call(fid, *args))

    @rule(
        sp=st.sampled_from(SPS),
        fid=st.sampled_from(FIDS),
        args=st.lists(_reg_values(), max_size=8),
        blob=st.binary(max_size=128),
    )
    def sp_raw_call(self, sp: int, fid: int, args: list[int], blob: bytes) -> None:
        part = self.spmc.partitions[sp]
        part.write(part.tx, blob)
        self.check(part.smc(fid, *args))

    @rule(blob=st.binary(max_size=256), fid=st.sampled_from(FIDS))
    def hyp_random_tx(self, blob: bytes, fid: int) -> None:
        self.hyp.write_tx(blob)
        n = len(blob)
        self.check(self.hyp.call(fid, n, n, 0, 0))

    # -- structured calls with mutations -------------------------------------------------
    @rule(
        fid=st.sampled_from(MEM_FIDS),
        vm=st.sampled_from(VMS),
        receivers=st.lists(st.sampled_from([*SPS, 2]), min_size=1, max_size=2, unique=True),
        pages=st.lists(st.integers(0, 11), min_size=1, max_size=3, unique=True),
        flips=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=2),
        frag=st.one_of(st.none(), st.integers(1, 12)),
    )
    def hyp_send(
        self,
        fid: int,
        vm: int,
        receivers: list[int],
        pages: list[int],
        flips: list[tuple[int, int]],
        frag: int | None,
    ) -> None:
        consts = [(self.pages[i], 1) for i in pages]
        desc = bytearray(txn(vm, [(r, PERMS[fid]) for r in receivers], consts, attrs=ATTRS[fid]))
        for pos, val in flips:
            if pos < len(desc):
                desc[pos] = val
        cut = None if frag is None else min(len(desc), frag * 16)
        r = self.hyp.send(fid, bytes(desc), cut)
        self.check(r)
        if r[0] == abi.FFA_MEM_FRAG_RX and cut is not None:
            self.hyp.write_tx(bytes(desc[cut:]))
            rest = len(desc) - cut
            r = self.hyp.call(abi.FFA_MEM_FRAG_TX, r[1], r[2], rest, r[4])
            self.check(r)
        if r[0] == abi.FFA_SUCCESS_32:
            self.live.append((r[2], vm, fid, receivers))

    @precondition(lambda self: bool(self.live))
    @rule(
        pick=st.integers(0, 100),
        who=st.integers(0, 1),
        read_only=st.booleans(),
        then_relinquish=st.booleans(),
        touch=st.booleans(),
    )
    def retrieve_live(
        self, pick: int, who: int, read_only: bool, then_relinquish: bool, touch: bool
    ) -> None:
        handle, vm, fid, receivers = self.live[pick % len(self.live)]
        sp_id = receivers[who % len(receivers)]
        if sp_id not in self.spmc.partitions:
            return
        part = self.spmc.partitions[sp_id]
        perms = (RO if read_only else RW) | (0 if fid == abi.FFA_MEM_SHARE_64 else NX)
        if fid != abi.FFA_MEM_SHARE_64 and len(receivers) > 1:
            perms &= 0x3
        req = retrieve_req(vm, handle, [(r, perms if r == sp_id else 0) for r in receivers])
        part.write(part.tx, req)
        r = part.smc(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req))
        self.check(r)
        self.check(part.smc(abi.FFA_RX_RELEASE))
        if r[0] == abi.FFA_MEM_RETRIEVE_RESP and touch:
            pa = self.spmc.shares[handle].frames[0].pa if handle in self.spmc.shares else None
            if pa is not None:
                part.read(pa, 16)
                if not read_only:
                    part.write(pa, b"w" * 16)
        if then_relinquish:
            part.write(part.tx, relinquish_desc(handle, [sp_id]))
            self.check(part.smc(abi.FFA_MEM_RELINQUISH))

    @rule(
        vm=st.sampled_from([*VMS, 0x8001]),
        rx=st.integers(0, 11),
        tx=st.integers(0, 11),
        rx_off=st.sampled_from([12, 16, 4000]),
    )
    def hyp_forward_rxtx(self, vm: int, rx: int, tx: int, rx_off: int) -> None:
        self.hyp.write_tx(rxtx_desc(vm, self.pages[rx], self.pages[tx], rx_off=rx_off))
        self.check(self.hyp.call(abi.FFA_RXTX_MAP_64, 0, 0, 0))

    @rule(
        sp=st.sampled_from(SPS),
        handle=st.integers(0, 5),
        sender=st.sampled_from([*VMS, 0x8001]),
        perms=st.sampled_from([RW, RO, RW | NX, RO | NX, 0, NX, 0xF]),
        flags=st.sampled_from([0, 1, 4, 1 << 10, 2 << 3, 1 << 9]),
    )
    def sp_retrieve(self, sp: int, handle: int, sender: int, perms: int, flags: int) -> None:
        part = self.spmc.partitions[sp]
        h = self.handles[handle % len(self.handles)]
        req = retrieve_req(sender, h, [(sp, perms)], flags=flags)
        part.write(part.tx, req)
        self.check(part.smc(abi.FFA_MEM_RETRIEVE_REQ_64, len(req), len(req)))
        self.check(part.smc(abi.FFA_RX_RELEASE))

    @rule(sp=st.sampled_from(SPS), handle=st.integers(0, 5), flags=st.sampled_from([0, 1, 2]))
    def sp_relinquish(self, sp: int, handle: int, flags: int) -> None:
        part = self.spmc.partitions[sp]
        part.write(part.tx, relinquish_desc(self.handles[handle % len(self.handles)], [sp], flags))
        self.check(part.smc(abi.FFA_MEM_RELINQUISH))

    @rule(handle=st.integers(0, 5), flags=st.sampled_from([0, 1, 4]))
    def hyp_reclaim(self, handle: int, flags: int) -> None:
        h = self.handles[handle % len(self.handles)]
        self.check(self.hyp.call(abi.FFA_MEM_RECLAIM, h & abi.MASK32, h >> 32, flags))

    @rule(handle=st.integers(0, 5), op=st.sampled_from([1, 2, 3]), vm=st.sampled_from(VMS))
    def hyp_memory_service(self, handle: int, op: int, vm: int) -> None:
        h = self.handles[handle % len(self.handles)]
        self.check(self.hyp.direct(vm, 0x8002, op, h & abi.MASK32, h >> 32, 0x5A, 0))

    @rule(
        sp=st.sampled_from(SPS),
        dst=st.sampled_from([*VMS, *SPS]),
        size=st.integers(0, 64),
        v12=st.booleans(),
    )
    def sp_send2(self, sp: int, dst: int, size: int, v12: bool) -> None:
        part = self.spmc.partitions[sp]
        hdr = struct.pack("<IIIHHI", 0, 0, 40 if v12 else 20, dst, sp, size)
        part.write(part.tx, hdr + bytes(20) + b"m" * size)
        self.check(part.smc(abi.FFA_MSG_SEND2))

    @rule(vm=st.sampled_from(VMS), bits=st.integers(0, 0xFF))
    def notification_traffic(self, vm: int, bits: int) -> None:
        sp = self.spmc.partitions[0x8001]
        self.check(self.hyp.call(abi.FFA_NOTIFICATION_BITMAP_CREATE, vm, 1))
        t = abi.pack_target(0x8001, vm)
        self.check(self.hyp.call(abi.FFA_NOTIFICATION_BIND, t, 0, bits))
        self.check(sp.smc(abi.FFA_NOTIFICATION_SET, t, 0, bits))
        self.check(self.hyp.call(abi.FFA_NOTIFICATION_INFO_GET_64))

    @precondition(lambda self: bool(self.spmc.vms))
    @rule(vm=st.sampled_from(VMS), op=st.sampled_from(["acquire", "release", "unmap", "get"]))
    def hyp_vm_buffer_ops(self, vm: int, op: int) -> None:
        fid = {
            "acquire": abi.FFA_RX_ACQUIRE,
            "release": abi.FFA_RX_RELEASE,
            "unmap": abi.FFA_RXTX_UNMAP,
            "get": abi.FFA_NOTIFICATION_GET,
        }[op]
        arg = vm << 16 if op == "unmap" else vm
        self.check(self.hyp.call(fid, arg, 0x5 if op == "get" else 0))

    @invariant()
    def consistent(self) -> None:
        assert self.spmc.invariant_problems() == []
        assert self.spmc.machine.held == []


TestSpmcStateMachine = SpmcStateMachine.TestCase
TestSpmcStateMachine.settings = settings(
    max_examples=150,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
