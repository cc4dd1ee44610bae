"""FFA_MEM_SHARE and FFA_MEM_RECLAIM, and shares at teardown (ffa_shm.c)."""

from __future__ import annotations

import struct

import pytest

from ffasim import abi
from ffasim.machine import Machine, P2MType
from ffasim.system import VM, System

from .helpers import (
    FaultSink,
    code,
    mem_share,
    negotiate,
    ready,
    reclaim,
    share_descriptor,
    share_descriptor_v1_0,
    share_pages,
)

SP = 0x8002


def refs(vm: VM, first: int, count: int) -> list[int]:
    return [f.refcount for f in vm.domain.ram[first : first + count]]


def test_share_then_reclaim(vm: VM, system: System) -> None:
    h = share_pages(vm, 4, 3)
    assert refs(vm, 4, 3) == [1, 1, 1]
    assert h in system.spmc.shares
    assert vm.domain.refcnt == 2  # the first share holds the domain
    assert code(reclaim(vm, h)) == 0
    assert refs(vm, 4, 3) == [0, 0, 0]
    assert vm.domain.refcnt == 1


def test_share_merges_contiguous_pages_into_one_range(vm: VM, system: System) -> None:
    desc = share_descriptor(vm.id, SP, [(vm.ipa(4), 1), (vm.ipa(5), 2), (vm.ipa(9), 1)])
    r = mem_share(vm, desc)
    assert code(r) == 0
    spmc_tx = system.xen.ffa_spmc_tx.value
    assert spmc_tx is not None
    sent = system.machine.mem.read(spmc_tx.pa, 48 + 32 + 16 + 32, "xen")
    emad_size, count, offs = struct.unpack_from("<III", sent, 24)
    assert (emad_size, count, offs) == (32, 1, 48)  # the SPMC speaks v1.2: 32-byte EMADs
    total, nranges = struct.unpack_from("<II", sent, 80)
    assert (total, nranges) == (4, 2)
    assert struct.unpack_from("<QI", sent, 96) == (vm.domain.ram[4].pa, 3)
    assert struct.unpack_from("<QI", sent, 112) == (vm.domain.ram[9].pa, 1)


def test_share_from_v1_0_guest(system: System) -> None:
    vm = ready(system.create_vm(), abi.FFA_VERSION_1_0)
    r = mem_share(vm, share_descriptor_v1_0(vm.id, SP, [(vm.ipa(4), 2)]))
    assert code(r) == 0


def test_share_32_is_accepted(vm: VM) -> None:
    desc = share_descriptor(vm.id, SP, [(vm.ipa(4), 1)])
    assert code(mem_share(vm, desc, abi.FFA_MEM_SHARE_32)) == 0


@pytest.mark.parametrize(
    ("regs", "err"),
    [
        ((100, 100, 0x1000, 1), abi.FFA_RET_NOT_SUPPORTED),  # a dynamically allocated buffer
        ((100, 101, 0, 0), abi.FFA_RET_INVALID_PARAMETERS),  # fragment longer than total
        ((200, 100, 0, 0), abi.FFA_RET_NOT_SUPPORTED),  # more than one fragment
        ((8192, 8192, 0, 0), abi.FFA_RET_DENIED),  # longer than the TX buffer
        ((40, 40, 0, 0), abi.FFA_RET_INVALID_PARAMETERS),  # shorter than the header
    ],
)
def test_share_register_errors(vm: VM, regs: tuple[int, ...], err: int) -> None:
    assert code(vm.smc(abi.FFA_MEM_SHARE_64, *regs)) == err


def test_share_without_tx_buffer_is_denied(system: System) -> None:
    vm = system.create_vm()
    negotiate(vm)
    assert code(vm.smc(abi.FFA_MEM_SHARE_64, 100, 100, 0, 0)) == abi.FFA_RET_DENIED


def test_share_while_tx_is_busy_is_busy(vm: VM) -> None:
    ctx = vm.domain.tee
    assert ctx is not None
    ctx.tx_lock.holder = "d0v1"  # another vCPU is inside a call holding the TX
    assert code(vm.smc(abi.FFA_MEM_SHARE_64, 100, 100, 0, 0)) == abi.FFA_RET_BUSY
    ctx.tx_lock.holder = None


def desc_with(vm: VM, **kw: int) -> bytes:
    return share_descriptor(vm.id, kw.pop("receiver", SP), [(vm.ipa(4), 1)], **kw)


@pytest.mark.parametrize(
    ("kw", "err"),
    [
        ({"attr": 0x2F | abi.FFA_MEM_ATTR_NS}, abi.FFA_RET_INVALID_PARAMETERS),
        ({"attr": 0x24}, abi.FFA_RET_NOT_SUPPORTED),
        ({"attr": 0x12F}, abi.FFA_RET_INVALID_PARAMETERS),  # does not fit 8 bits
        ({"flags": 0x100}, abi.FFA_RET_INVALID_PARAMETERS),
        ({"emad_count": 2}, abi.FFA_RET_NOT_SUPPORTED),
        ({"emad_count": 0}, abi.FFA_RET_NOT_SUPPORTED),
        ({"emad_size": 8}, abi.FFA_RET_INVALID_PARAMETERS),
        ({"emad_offs": 56}, abi.FFA_RET_INVALID_PARAMETERS),  # not 16-byte aligned
        ({"receiver": 0x0002}, abi.FFA_RET_NOT_SUPPORTED),  # a VM
        ({"perm": abi.FFA_MEM_ACC_RO}, abi.FFA_RET_NOT_SUPPORTED),
        ({"total": 0}, abi.FFA_RET_INVALID_PARAMETERS),
        ({"total": 2}, abi.FFA_RET_INVALID_PARAMETERS),  # the ranges fall short
        ({"total": 257}, abi.FFA_RET_NO_MEMORY),  # above 256 pages
    ],
)
def test_share_descriptor_errors(vm: VM, kw: dict[str, int], err: int) -> None:
    assert code(mem_share(vm, desc_with(vm, **kw))) == err
    assert refs(vm, 4, 1) == [0]
    assert vm.domain.refcnt == 1


@pytest.mark.parametrize("offs", [0x10000, 0x1000])
def test_share_emad_offset_out_of_range_is_invalid(vm: VM, offs: int) -> None:
    desc = desc_with(vm)
    desc = desc[:32] + struct.pack("<I", offs) + desc[36:]
    assert code(mem_share(vm, desc)) == abi.FFA_RET_INVALID_PARAMETERS


def test_share_region_offset_beyond_fragment_is_not_supported(vm: VM) -> None:
    desc = desc_with(vm)
    desc = desc[:52] + struct.pack("<I", len(desc) - 8) + desc[56:]
    assert code(mem_share(vm, desc)) == abi.FFA_RET_NOT_SUPPORTED


def test_share_sender_mismatch_is_invalid(vm: VM) -> None:
    desc = share_descriptor(vm.id + 1, SP, [(vm.ipa(4), 1)])
    assert code(mem_share(vm, desc)) == abi.FFA_RET_INVALID_PARAMETERS


def test_share_more_pages_than_announced_is_invalid(vm: VM) -> None:
    desc = share_descriptor(vm.id, SP, [(vm.ipa(4), 3)], total=2)
    assert code(mem_share(vm, desc)) == abi.FFA_RET_INVALID_PARAMETERS
    assert refs(vm, 4, 3) == [0, 0, 0]


def test_share_ranges_beyond_fragment_are_invalid(vm: VM) -> None:
    desc = share_descriptor(vm.id, SP, [(vm.ipa(4), 1)])
    # Claim 3 ranges but send one.
    desc = desc[:68] + struct.pack("<I", 3) + desc[72:]
    assert code(mem_share(vm, desc)) == abi.FFA_RET_INVALID_PARAMETERS


def test_share_unaligned_range_is_invalid(vm: VM) -> None:
    desc = share_descriptor(vm.id, SP, [(vm.ipa(4) + 0x10, 1)])
    assert code(mem_share(vm, desc)) == abi.FFA_RET_INVALID_PARAMETERS


def test_share_of_unmapped_ipa_is_denied(vm: VM) -> None:
    desc = share_descriptor(vm.id, SP, [(vm.ipa(4), 1), (0x1000, 1)])
    assert code(mem_share(vm, desc)) == abi.FFA_RET_DENIED
    assert refs(vm, 4, 1) == [0]


def test_share_of_non_rw_ram_is_denied(vm: VM) -> None:
    f = vm.domain.ram[6]
    vm.domain.p2m.map(vm.ipa(6) >> 12, f, P2MType.grant_map_rw)
    desc = share_descriptor(vm.id, SP, [(vm.ipa(6), 1)])
    assert code(mem_share(vm, desc)) == abi.FFA_RET_DENIED
    assert f.refcount == 0


def test_share_range_wrapping_the_address_space_is_refused(vm: VM) -> None:
    desc = share_descriptor(vm.id, SP, [(vm.ipa(4), 1), ((1 << 64) - 0x1000, 2)], total=3)
    # The first page of the wrapping range is not RAM: DENIED before the overflow is seen.
    assert code(mem_share(vm, desc)) == abi.FFA_RET_DENIED
    assert refs(vm, 4, 1) == [0]


def test_share_limit_of_32_shares_is_no_memory(system: System) -> None:
    vm = ready(system.create_vm(pages=40))
    handles = [share_pages(vm, 2 + n, 1, 0x8001) for n in range(32)]
    assert len(set(handles)) == 32
    r = mem_share(vm, share_descriptor(vm.id, 0x8001, [(vm.ipa(35), 1)]))
    assert code(r) == abi.FFA_RET_NO_MEMORY
    for h in handles:
        assert code(reclaim(vm, h)) == 0
    assert vm.domain.refcnt == 1


def test_share_256_pages_is_the_maximum(system: System) -> None:
    vm = ready(system.create_vm(pages=260))
    h = share_pages(vm, 2, 256, 0x8001)
    assert code(reclaim(vm, h)) == 0


def test_share_allocation_failure_is_no_memory() -> None:
    sink = FaultSink()
    system = System(machine=Machine(sink))
    vm = ready(system.create_vm())
    sink.faults["alloc:xzalloc_flex_struct@alloc_ffa_shm_mem"] = [1]
    assert code(mem_share(vm, desc_with(vm))) == abi.FFA_RET_NO_MEMORY
    assert vm.domain.refcnt == 1 and system.machine.held == []


def test_share_spmc_error_is_passed_through_and_pages_released() -> None:
    sink = FaultSink()
    system = System(machine=Machine(sink))
    vm = ready(system.create_vm())
    sink.faults["smc:FFA_MEM_SHARE_64"] = [abi.FFA_RET_DENIED]
    assert code(mem_share(vm, desc_with(vm))) == abi.FFA_RET_DENIED
    assert refs(vm, 4, 1) == [0] and vm.domain.refcnt == 1


def test_share_frag_rx_reply_is_aborted(vm: VM, system: System) -> None:
    entry = system.conduit.entry

    def frag_rx(caller: int, regs: abi.Regs) -> abi.Regs:
        if regs[0] == abi.FFA_MEM_SHARE_64:
            return abi.regs(abi.FFA_MEM_FRAG_RX, 5, 0, 64)
        return entry(caller, regs)

    system.conduit.entry = frag_rx
    assert code(mem_share(vm, desc_with(vm))) == abi.FFA_RET_ABORTED
    assert refs(vm, 4, 1) == [0]


def test_share_forced_null_spmc_tx_is_not_supported() -> None:
    sink = FaultSink()
    system = System(machine=Machine(sink))
    vm = ready(system.create_vm())
    sink.faults["helper:ffa_rxtx_spmc_tx_acquire"] = [1]
    assert code(mem_share(vm, desc_with(vm))) == abi.FFA_RET_NOT_SUPPORTED
    assert system.machine.held == [] and refs(vm, 4, 1) == [0]


def test_reclaim_unknown_handle_is_invalid(vm: VM) -> None:
    assert code(reclaim(vm, 0x1234)) == abi.FFA_RET_INVALID_PARAMETERS


def test_reclaim_of_another_vms_handle_is_invalid(system: System) -> None:
    a = ready(system.create_vm())
    b = ready(system.create_vm())
    h = share_pages(a, 4, 1)
    assert code(reclaim(b, h)) == abi.FFA_RET_INVALID_PARAMETERS
    assert code(reclaim(a, h)) == 0


def test_reclaim_spmc_error_keeps_the_share() -> None:
    sink = FaultSink()
    system = System(machine=Machine(sink))
    vm = ready(system.create_vm())
    h = share_pages(vm, 4, 1)
    sink.faults["smc:FFA_MEM_RECLAIM"] = [abi.FFA_RET_DENIED]
    assert code(reclaim(vm, h)) == abi.FFA_RET_DENIED
    assert refs(vm, 4, 1) == [1]
    assert code(reclaim(vm, h)) == 0


def test_destroy_with_share_retrieved_by_sp_retries_until_reclaimed() -> None:
    sink = FaultSink()
    system = System(machine=Machine(sink))
    vm = ready(system.create_vm())
    h = share_pages(vm, 4, 2)
    sink.faults["smc:FFA_MEM_RECLAIM"] = [abi.FFA_RET_DENIED, abi.FFA_RET_DENIED]
    system.destroy_vm(vm)
    assert any("zombie" in line for line in system.audit())
    assert system.run_timers() == 1
    assert any("not reclaimed" in line for line in system.audit())
    assert system.run_timers() == 1
    assert system.audit() == []
    assert h not in system.spmc.shares


def test_destroy_with_permanent_reclaim_failure_leaks_the_pages() -> None:
    sink = FaultSink()
    system = System(machine=Machine(sink))
    vm = ready(system.create_vm())
    share_pages(vm, 4, 2)
    sink.faults["smc:FFA_MEM_RECLAIM"] = [abi.FFA_RET_ABORTED]
    system.destroy_vm(vm)
    # The dropped share still counts, so the teardown stays queued and retries every second
    # (as in Xen: the domain is a zombie for good).
    assert system.run_timers() == 1
    assert system.run_timers() == 1
    audit = system.audit()
    assert any("permanent reclaim failure" in line for line in audit)
    assert any("zombie" in line for line in audit)
    assert any("teardown list" in line for line in audit)
