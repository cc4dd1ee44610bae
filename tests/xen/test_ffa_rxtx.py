"""Guest RX/TX mapping and RX ownership, and Xen's own SPMC buffers (ffa_rxtx.c)."""

from __future__ import annotations

import pytest

from ffasim import abi
from ffasim.machine import Machine, P2MType
from ffasim.system import VM, System

from .helpers import FaultSink, code, map_rxtx, negotiate


def test_rxtx_map_then_unmap_takes_and_drops_page_references(system: System) -> None:
    vm = system.create_vm()
    negotiate(vm)
    tx, rx = vm.domain.ram[0], vm.domain.ram[1]
    assert code(map_rxtx(vm)) == 0
    assert (tx.refcount, rx.refcount) == (1, 1)
    assert code(vm.smc(abi.FFA_RXTX_UNMAP)) == 0
    assert (tx.refcount, rx.refcount) == (0, 0)


@pytest.mark.parametrize("pages", [0, 2, 0x1_0000_0000])
def test_rxtx_map_page_count_not_one_is_invalid(system: System, pages: int) -> None:
    vm = system.create_vm()
    negotiate(vm)
    r = vm.smc(abi.FFA_RXTX_MAP_64, vm.ipa(0), vm.ipa(1), pages)
    assert code(r) == abi.FFA_RET_INVALID_PARAMETERS


def test_rxtx_map_page_count_is_a_32_bit_word(system: System) -> None:
    vm = system.create_vm()
    negotiate(vm)
    assert code(vm.smc(abi.FFA_RXTX_MAP_64, vm.ipa(0), vm.ipa(1), 0x1_0000_0001)) == 0


def test_rxtx_map_unaligned_is_invalid(system: System) -> None:
    vm = system.create_vm()
    negotiate(vm)
    r = vm.smc(abi.FFA_RXTX_MAP_64, vm.ipa(0) + 8, vm.ipa(1), 1)
    assert code(r) == abi.FFA_RET_INVALID_PARAMETERS
    r = vm.smc(abi.FFA_RXTX_MAP_64, vm.ipa(0), vm.ipa(1) + 0x800, 1)
    assert code(r) == abi.FFA_RET_INVALID_PARAMETERS


def test_rxtx_map_already_mapped_is_denied(vm: VM) -> None:
    assert code(map_rxtx(vm, 2, 3)) == abi.FFA_RET_DENIED
    assert vm.domain.ram[2].refcount == 0


def test_rxtx_map_outside_ram_is_invalid_and_leaks_nothing(system: System) -> None:
    vm = system.create_vm(pages=4)
    negotiate(vm)
    r = vm.smc(abi.FFA_RXTX_MAP_64, vm.ipa(0), vm.ipa(100), 1)
    assert code(r) == abi.FFA_RET_INVALID_PARAMETERS
    assert vm.domain.ram[0].refcount == 0
    r = vm.smc(abi.FFA_RXTX_MAP_64, 0x1000, vm.ipa(0), 1)
    assert code(r) == abi.FFA_RET_INVALID_PARAMETERS


def test_rxtx_map_of_non_ram_rw_page_is_invalid(system: System) -> None:
    vm = system.create_vm(pages=4)
    negotiate(vm)
    f = vm.domain.ram[3]
    vm.domain.p2m.map(vm.ipa(3) >> 12, f, P2MType.ram_ro)
    r = vm.smc(abi.FFA_RXTX_MAP_64, vm.ipa(0), vm.ipa(3), 1)
    assert code(r) == abi.FFA_RET_INVALID_PARAMETERS
    r = vm.smc(abi.FFA_RXTX_MAP_64, vm.ipa(3), vm.ipa(0), 1)
    assert code(r) == abi.FFA_RET_INVALID_PARAMETERS
    assert f.refcount == 0 and vm.domain.ram[0].refcount == 0


def test_rxtx_map_32_ignores_upper_address_bits(system: System) -> None:
    vm = system.create_vm()
    negotiate(vm)
    r = vm.smc(abi.FFA_RXTX_MAP_32, (1 << 40) | vm.ipa(0), (1 << 33) | vm.ipa(1), 1)
    assert code(r) == 0


def test_rxtx_map_global_mapping_failure_is_no_memory() -> None:
    m = Machine(FaultSink({"alloc:__map_domain_page_global@ffa_handle_rxtx_map": 1}))
    system = System(machine=m)
    vm = system.create_vm()
    negotiate(vm)
    assert code(map_rxtx(vm)) == abi.FFA_RET_NO_MEMORY
    assert vm.domain.ram[0].refcount == 0 and vm.domain.ram[1].refcount == 0


def test_rxtx_map_is_forwarded_to_the_spmc(vm: VM, system: System) -> None:
    mb = system.spmc.mailboxes[vm.id]
    assert mb.rx == vm.domain.ram[1].pa and mb.tx == vm.domain.ram[0].pa
    assert code(vm.smc(abi.FFA_RXTX_UNMAP)) == 0
    assert vm.id not in system.spmc.mailboxes or not system.spmc.mailboxes[vm.id].mapped


def test_rxtx_map_spmc_error_is_passed_through() -> None:
    sink = FaultSink()
    system = System(machine=Machine(sink))
    vm = system.create_vm()
    negotiate(vm)
    sink.faults["smc:FFA_RXTX_MAP_64"] = abi.FFA_RET_NO_MEMORY
    assert code(map_rxtx(vm)) == abi.FFA_RET_NO_MEMORY
    assert vm.domain.ram[0].refcount == 0 and system.machine.held == []


def test_rxtx_unmap_without_map_is_invalid(system: System) -> None:
    vm = system.create_vm()
    negotiate(vm)
    assert code(vm.smc(abi.FFA_RXTX_UNMAP)) == abi.FFA_RET_INVALID_PARAMETERS


def test_rxtx_unmap_while_guest_owns_rx_is_denied(vm: VM) -> None:
    assert code(vm.smc(abi.FFA_PARTITION_INFO_GET)) == 0  # the guest now owns its RX
    assert code(vm.smc(abi.FFA_RXTX_UNMAP)) == abi.FFA_RET_DENIED
    assert code(vm.smc(abi.FFA_RX_RELEASE)) == 0
    assert code(vm.smc(abi.FFA_RXTX_UNMAP)) == 0


def test_rxtx_unmap_spmc_error_keeps_the_mapping() -> None:
    sink = FaultSink()
    system = System(machine=Machine(sink))
    vm = system.create_vm()
    negotiate(vm)
    assert code(map_rxtx(vm)) == 0
    sink.faults["smc:FFA_RXTX_UNMAP"] = abi.FFA_RET_ABORTED
    assert code(vm.smc(abi.FFA_RXTX_UNMAP)) == abi.FFA_RET_ABORTED
    assert vm.domain.ram[0].refcount == 1


def test_rx_release_without_buffers_is_denied(system: System) -> None:
    vm = system.create_vm()
    negotiate(vm)
    assert code(vm.smc(abi.FFA_RX_RELEASE)) == abi.FFA_RET_DENIED


def test_rx_release_when_rx_is_free_is_denied(vm: VM) -> None:
    assert code(vm.smc(abi.FFA_RX_RELEASE)) == abi.FFA_RET_DENIED


def test_rx_release_spmc_error_keeps_guest_ownership() -> None:
    sink = FaultSink()
    system = System(machine=Machine(sink))
    vm = system.create_vm()
    negotiate(vm)
    assert code(map_rxtx(vm)) == 0
    assert code(vm.smc(abi.FFA_PARTITION_INFO_GET)) == 0
    sink.faults["smc:FFA_RX_RELEASE"] = [abi.FFA_RET_ABORTED]
    assert code(vm.smc(abi.FFA_RX_RELEASE)) == abi.FFA_RET_ABORTED
    assert code(vm.smc(abi.FFA_PARTITION_INFO_GET)) == abi.FFA_RET_BUSY
    assert code(vm.smc(abi.FFA_RX_RELEASE)) == 0


def test_rx_acquire_spmc_error_is_passed_to_partinfo() -> None:
    sink = FaultSink()
    system = System(machine=Machine(sink))
    vm = system.create_vm()
    negotiate(vm)
    assert code(map_rxtx(vm)) == 0
    sink.faults["smc:FFA_RX_ACQUIRE"] = [abi.FFA_RET_DENIED]
    assert code(vm.smc(abi.FFA_PARTITION_INFO_GET)) == abi.FFA_RET_DENIED
    assert code(vm.smc(abi.FFA_PARTITION_INFO_GET)) == 0


def test_spmc_buffers_mapped_at_boot(system: System) -> None:
    xen = system.xen
    rx, tx = xen.ffa_spmc_rx.value, xen.ffa_spmc_tx.value
    assert rx is not None and tx is not None
    assert rx.owner == "xen" and tx.owner == "xen"


def test_forced_null_spmc_tx_drops_the_lock() -> None:
    sink = FaultSink()
    system = System(machine=Machine(sink))
    vm = system.create_vm()
    negotiate(vm)
    sink.faults["helper:ffa_rxtx_spmc_tx_acquire"] = [1]
    assert code(map_rxtx(vm)) == abi.FFA_RET_INVALID_PARAMETERS
    assert system.machine.held == []
    assert code(map_rxtx(vm)) == 0


def test_spmc_buffer_allocation_failure_means_no_firmware() -> None:
    system = System(
        machine=Machine(FaultSink({"alloc:alloc_xenheap_pages@ffa_rxtx_spmc_init": [None, 1]}))
    )
    assert system.xen.ffa_fw_version == 0
    assert system.xen.ffa_spmc_rx.value is None and system.xen.ffa_spmc_tx.value is None
    assert system.audit() == []
