"""The released mediators (xen-4.19 to xen-4.21): what each does differently, as its C does."""

from __future__ import annotations

import pytest

from ffasim import abi
from ffasim.machine import HypervisorPanic, Machine, RecordingSink
from ffasim.system import DomainCreationError, System

from .helpers import RX_PAGE, TX_PAGE, code, negotiate

SMCCC_NOT_SUPPORTED = abi.MASK64


def _smcs(sink: RecordingSink) -> list[tuple[int, ...]]:
    return [e[3] for e in sink.events if e[0] == "call" and e[1] == "smc"]  # type: ignore[misc]


# -- xen-4.21 ---------------------------------------------------------------------------------


def test_4_21_serves_calls_before_any_ffa_version() -> None:
    """No negotiation gate before ad2d3a7daf: version 0 is a version like any other."""
    assert code(System(variant="xen-4.21").create_vm().smc(abi.FFA_ID_GET)) == 0
    assert code(System(variant="seed-v1").create_vm().smc(abi.FFA_ID_GET)) == (
        abi.FFA_RET_NOT_SUPPORTED
    )


def test_4_21_ffa_version_changes_the_version_after_use() -> None:
    vm = System(variant="xen-4.21").create_vm()
    negotiate(vm, abi.FFA_VERSION_1_1)
    assert code(vm.smc(abi.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, 1)) == 0
    assert vm.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_0)[0] == abi.FFA_VERSION_1_1
    # Now a 1.0 guest: the count flag is refused.
    r = vm.smc(abi.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, 1)
    assert code(r) == abi.FFA_RET_INVALID_PARAMETERS


def test_4_21_routes_function_numbers_up_to_0x86_only() -> None:
    """FFA_FNUM_MAX_VALUE was 0x86 before a9eb6c6269: REQ2 (0x8D) never reaches the mediator."""
    for variant, x0 in (("xen-4.21", SMCCC_NOT_SUPPORTED), ("seed-v1", abi.FFA_ERROR)):
        vm = System(variant=variant).create_vm()
        negotiate(vm, abi.FFA_VERSION_1_1)
        assert vm.smc(abi.FFA_MSG_SEND_DIRECT_REQ2)[0] == x0


def test_4_21_maps_zero_pages_and_can_never_unmap_them() -> None:
    """No check of page_count 0 before a3075e2fda: the map succeeds with ctx->page_count 0, so
    a second map is DENIED (ctx->rx is set) and an unmap INVALID (page_count is 0)."""
    system = System(variant="xen-4.21")
    vm = system.create_vm()
    negotiate(vm, abi.FFA_VERSION_1_1)
    assert code(vm.smc(abi.FFA_RXTX_MAP_64, vm.ipa(TX_PAGE), vm.ipa(RX_PAGE), 0)) == 0
    assert code(vm.smc(abi.FFA_RXTX_MAP_64, vm.ipa(2), vm.ipa(3), 1)) == abi.FFA_RET_DENIED
    assert code(vm.smc(abi.FFA_RXTX_UNMAP)) == abi.FFA_RET_INVALID_PARAMETERS
    system.destroy_vm(vm)
    assert system.audit() == [
        f"page {vm.domain.ram[TX_PAGE].mfn:#x} of destroyed d0 still referenced (1 reference)",
        f"page {vm.domain.ram[RX_PAGE].mfn:#x} of destroyed d0 still referenced (1 reference)",
    ]


# -- xen-4.20 ---------------------------------------------------------------------------------


def test_4_20_has_no_vm_to_vm() -> None:
    system = System(variant="xen-4.20", vm_to_vm=True)
    assert not system.xen.CONFIG_FFA_VM_TO_VM
    vm = system.create_vm()
    negotiate(vm, abi.FFA_VERSION_1_1)
    assert system.xen.ffa_ctx_head == []


def test_4_20_forwards_notification_set_to_a_partition() -> None:
    """Until 911b305e7b broke it, SET went to the SPMC whoever the receiver (4.21 and the seed
    answer NOT_SUPPORTED themselves)."""
    for variant, forwarded in (("xen-4.20", True), ("xen-4.21", False)):
        sink = RecordingSink()
        vm = System(variant=variant, machine=Machine(sink)).create_vm()
        negotiate(vm, abi.FFA_VERSION_1_1)
        sink.events.clear()
        vm.smc(abi.FFA_NOTIFICATION_SET, abi.pack_target(vm.id, 0x8001), 0, 1)
        sent = [r[0] for r in _smcs(sink)]
        assert (abi.FFA_NOTIFICATION_SET in sent) is forwarded


def test_4_20_send2_without_mapped_buffers_dereferences_null() -> None:
    vm = System(variant="xen-4.20").create_vm()
    negotiate(vm, abi.FFA_VERSION_1_1)
    with pytest.raises(HypervisorPanic, match=r"^NULL pointer dereference: Xen reads ctx->tx"):
        vm.smc(abi.FFA_MSG_SEND2)


# -- xen-4.19 ---------------------------------------------------------------------------------


def test_4_19_refuses_an_spmc_above_ffa_1_1() -> None:
    system = System(variant="xen-4.19")
    assert system.xen.ffa_fw_version == 0
    with pytest.raises(DomainCreationError, match="error -19"):
        system.create_vm()
    assert System(variant="xen-4.19", spmc_version=abi.FFA_VERSION_1_1).xen.ffa_fw_version == (
        abi.FFA_VERSION_1_1
    )


def test_4_19_answers_the_guest_its_own_version() -> None:
    """Before da07df5558 the reply is the version the guest gets (1.0 or 1.1), not Xen's."""
    vm = System(variant="xen-4.19", spmc_version=abi.FFA_VERSION_1_1).create_vm()
    assert vm.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_0)[0] == abi.FFA_VERSION_1_0
    assert vm.smc(abi.FFA_VERSION, 0x20000)[0] == abi.FFA_VERSION_1_1  # the major is not checked


def test_4_19_bind_and_unbind_swap_the_bitmap_halves() -> None:
    sink = RecordingSink()
    vm = System(variant="xen-4.19", spmc_version=abi.FFA_VERSION_1_1, machine=Machine(sink))
    guest = vm.create_vm()
    negotiate(guest, abi.FFA_VERSION_1_1)
    target = abi.pack_target(0x8001, guest.id)
    for fid in (abi.FFA_NOTIFICATION_BIND, abi.FFA_NOTIFICATION_UNBIND):
        sink.events.clear()
        guest.smc(fid, target, 0, 0x1, 0x2)  # w3 = low half, w4 = high half
        (sent,) = [r for r in _smcs(sink) if r[0] == fid]
        assert sent[3:5] == (0x2, 0x1)


def test_4_19_rxtx_map_of_an_rx_outside_ram_puts_a_null_page() -> None:
    vm = System(variant="xen-4.19", spmc_version=abi.FFA_VERSION_1_1).create_vm()
    negotiate(vm, abi.FFA_VERSION_1_1)
    with pytest.raises(HypervisorPanic, match=r"^NULL pointer dereference: put_page\(NULL\)"):
        vm.smc(abi.FFA_RXTX_MAP_64, vm.ipa(TX_PAGE), 0x1000, 1)


def test_4_19_has_no_send2_and_gates_notification_features_per_vm() -> None:
    vm = System(variant="xen-4.19", spmc_version=abi.FFA_VERSION_1_1).create_vm()
    negotiate(vm, abi.FFA_VERSION_1_1)
    assert code(vm.smc(abi.FFA_MSG_SEND2)) == abi.FFA_RET_NOT_SUPPORTED
    assert code(vm.smc(abi.FFA_FEATURES, abi.FFA_MSG_SEND2)) == abi.FFA_RET_NOT_SUPPORTED
    assert code(vm.smc(abi.FFA_FEATURES, abi.FFA_NOTIFICATION_BIND)) == 0  # its bitmap exists
