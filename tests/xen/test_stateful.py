"""Random guest calls against the reference mediator: after every call no lock is held, every
page reference is accounted for by a mapping or a share, shares match the SPMC's, and nothing
raises."""

from __future__ import annotations

import struct
from collections import Counter

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ffasim import abi
from ffasim.system import VM, System

from .helpers import TX_PAGE, share_descriptor

PAGES = 12
NVMS = 3

vm_index = st.integers(0, NVMS - 1)
page = st.integers(0, PAGES + 2)  # a few beyond RAM
u64 = st.integers(0, (1 << 64) - 1)
small = st.sampled_from([0, 1, 2, 3, 0x10, 0x30, 0x8001, 0x8002, 0x8003, 0xFFFF, 0xFFFFFFFF])
FIDS = sorted(abi.FUNCTION_IDS | {0x84000000, 0xC400008F})


class MediatorMachine(RuleBasedStateMachine):
    variant = "reference"

    @initialize(vm_to_vm=st.booleans())
    def boot(self, vm_to_vm: bool) -> None:
        self.system = System(variant=self.variant, vm_to_vm=vm_to_vm)
        self.vms: list[VM] = [self.system.create_vm(vcpus=2, pages=PAGES) for _ in range(NVMS)]
        self.handles: list[int] = []

    def call(self, i: int, fid: int, *args: int) -> abi.Regs:
        vm = self.vms[i]
        r = vm.smc(fid, *args)
        assert len(r) == 18
        if abi.is_success(r) and fid in (abi.FFA_MEM_SHARE_64, abi.FFA_MEM_SHARE_32):
            self.handles.append(abi.make_handle(r[2], r[3]))
        return r

    @rule(i=vm_index, vers=st.sampled_from([0x10000, 0x10001, 0x10002, 0x10005, 0x20000]))
    def version(self, i: int, vers: int) -> None:
        self.call(i, abi.FFA_VERSION, vers)

    @rule(
        i=vm_index,
        tx=page,
        rx=page,
        n=st.sampled_from([0, 1, 1, 1, 2]),
        off=st.sampled_from([0, 0, 8]),
    )
    def rxtx_map(self, i: int, tx: int, rx: int, n: int, off: int) -> None:
        vm = self.vms[i]
        self.call(i, abi.FFA_RXTX_MAP_64, vm.ipa(tx) + off, vm.ipa(rx), n)

    @rule(i=vm_index)
    def rxtx_unmap(self, i: int) -> None:
        self.call(i, abi.FFA_RXTX_UNMAP)

    @rule(i=vm_index)
    def rx_release(self, i: int) -> None:
        self.call(i, abi.FFA_RX_RELEASE)

    @rule(i=vm_index, flags=st.sampled_from([0, 0, 1, 2]), which=st.sampled_from([0, 1, 2]))
    def partinfo(self, i: int, flags: int, which: int) -> None:
        uuid = [abi.NIL_UUID, abi.uuid_bytes("ffa5e000-0000-4000-8000-000000008002"), b"\1" * 16]
        self.call(i, abi.FFA_PARTITION_INFO_GET, *abi.uuid_to_regs32(uuid[which]), flags)

    @rule(i=vm_index, start=st.integers(0, 8), tag=st.integers(0, 3))
    def partinfo_regs(self, i: int, start: int, tag: int) -> None:
        self.call(i, abi.FFA_PARTITION_INFO_GET_REGS, 0, 0, start | tag << 16)

    @rule(
        i=vm_index,
        first=page,
        count=st.integers(1, 4),
        receiver=st.sampled_from([0x8001, 0x8002, 0x8003, 0x0002]),
        mutate=st.lists(st.tuples(st.integers(0, 111), st.integers(0, 255)), max_size=3),
        sender_ok=st.booleans(),
        cut=st.sampled_from([0, 0, 0, 8, 60]),
    )
    def share(
        self,
        i: int,
        first: int,
        count: int,
        receiver: int,
        mutate: list[tuple[int, int]],
        sender_ok: bool,
        cut: int,
    ) -> None:
        vm = self.vms[i]
        sender = vm.id if sender_ok else vm.id + 1
        desc = bytearray(share_descriptor(sender, receiver, [(vm.ipa(first), count)]))
        for pos, val in mutate:
            if pos < len(desc):
                desc[pos] = val
        if cut:
            desc = desc[: len(desc) - cut]
        try:
            vm.write(vm.ipa(TX_PAGE), bytes(desc))
        except Exception:
            return
        self.call(i, abi.FFA_MEM_SHARE_64, len(desc), len(desc), 0, 0)

    @rule(i=vm_index, pick=st.integers(0, 40), junk=u64)
    def reclaim(self, i: int, pick: int, junk: int) -> None:
        h = self.handles[pick] if pick < len(self.handles) else junk
        self.call(i, abi.FFA_MEM_RECLAIM, abi.handle_lo(h), abi.handle_hi(h), pick % 2)

    @rule(i=vm_index, op=st.sampled_from([1, 2]), pick=st.integers(0, 40), arg=small)
    def memsvc(self, i: int, op: int, pick: int, arg: int) -> None:
        h = self.handles[pick] if pick < len(self.handles) else pick
        w1 = abi.pack_target(self.vms[i].id, 0x8002)
        self.call(
            i, abi.FFA_MSG_SEND_DIRECT_REQ_32, w1, 0, op, abi.handle_lo(h), abi.handle_hi(h), arg
        )

    @rule(
        i=vm_index,
        dst=small,
        src_ok=st.booleans(),
        off=small,
        size=small,
        data=st.binary(max_size=64),
    )
    def send2(self, i: int, dst: int, src_ok: bool, off: int, size: int, data: bytes) -> None:
        vm = self.vms[i]
        src = vm.id if src_ok else vm.id ^ 1
        hdr = struct.pack("<IIIII", 0, 0, off, (src << 16) | (dst & 0xFFFF), size) + data
        try:
            vm.write(vm.ipa(TX_PAGE), hdr)
        except Exception:
            return
        self.call(i, abi.FFA_MSG_SEND2)

    @rule(i=vm_index, fid=st.sampled_from(FIDS), args=st.lists(st.one_of(small, u64), max_size=17))
    def anything(self, i: int, fid: int, args: list[int]) -> None:
        self.call(i, fid, *args)

    @rule(i=vm_index, n=st.integers(0, NVMS - 1))
    def direct(self, i: int, n: int) -> None:
        vm = self.vms[i]
        self.call(i, abi.FFA_MSG_SEND_DIRECT_REQ_64, abi.pack_target(vm.id, 0x8001 + n), 0, 1, 2)

    @rule(i=vm_index)
    def restart(self, i: int) -> None:
        self.system.destroy_vm(self.vms[i])
        self.system.run_timers(2.0)
        self.vms[i] = self.system.create_vm(vcpus=2, pages=PAGES)

    @rule()
    def tick(self) -> None:
        self.system.run_timers(1.0)
        self.system.run_tasklets()

    # -- invariants --------------------------------------------------------------------------------
    @invariant()
    def no_lock_held(self) -> None:
        assert self.system.machine.held == []

    @invariant()
    def page_references_are_accounted_for(self) -> None:
        for vm in self.vms:
            ctx = vm.domain.tee
            assert ctx is not None
            expected: Counter[int] = Counter()
            for pg in (ctx.rx_pg.value, ctx.tx_pg.value):
                if pg is not None:
                    expected[pg.mfn] += 1
            for shm in ctx.shm_list.value:
                for pg in shm.pages:
                    expected[pg.mfn] += 1
            for f in vm.domain.ram:
                assert f.refcount == expected[f.mfn], (vm, f, expected[f.mfn])

    @invariant()
    def shares_match_the_spmc(self) -> None:
        for vm in self.vms:
            ctx = vm.domain.tee
            assert ctx is not None
            shms = ctx.shm_list.value
            assert ctx.shm_count.value == len(shms)
            assert vm.domain.refcnt == 1 + (1 if shms else 0)
            for shm in shms:
                assert shm.handle in self.system.spmc.shares

    def teardown(self) -> None:
        if not hasattr(self, "system"):
            return
        for vm in list(self.vms):
            self.system.destroy_vm(vm)
        for _ in range(3):
            self.system.run_timers(1.0)
        assert self.system.audit() == []


MediatorMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_random_guest_calls_keep_the_mediator_consistent = MediatorMachine.TestCase


class HeadMachine(MediatorMachine):
    """The same for upstream as it is: its bugs (a share that succeeds with handle 0, ...) do
    not break these invariants or raise."""

    variant = "head"


HeadMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_random_guest_calls_on_upstream_head = HeadMachine.TestCase
