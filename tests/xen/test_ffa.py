"""The dispatcher, version negotiation, FFA_ID_GET and FFA_FEATURES (ffa.c)."""

from __future__ import annotations

import pytest

from ffasim import abi
from ffasim.system import System

from .helpers import code, negotiate

MASK64 = (1 << 64) - 1


def test_call_before_version_is_not_supported(system: System) -> None:
    vm = system.create_vm()
    assert code(vm.smc(abi.FFA_ID_GET)) == abi.FFA_RET_NOT_SUPPORTED


def test_version_answers_v1_2_and_negotiation_finalises_on_next_call(system: System) -> None:
    vm = system.create_vm()
    r = vm.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_1)
    assert r == abi.regs(abi.FFA_VERSION_1_2)
    assert vm.domain.tee is not None and vm.domain.tee.guest_vers.value == 0
    r = vm.smc(abi.FFA_ID_GET)
    assert r == abi.success(vm.id)
    assert vm.domain.tee.guest_vers.value == abi.FFA_VERSION_1_1


def test_version_may_be_asked_again_until_final(system: System) -> None:
    vm = system.create_vm()
    vm.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_0)
    vm.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_2)
    vm.smc(abi.FFA_ID_GET)
    assert vm.domain.tee is not None
    assert vm.domain.tee.guest_vers.value == abi.FFA_VERSION_1_2
    # After that FFA_VERSION answers our version and changes nothing.
    assert vm.smc(abi.FFA_VERSION, abi.FFA_VERSION_1_0) == abi.regs(abi.FFA_VERSION_1_2)
    assert vm.domain.tee.guest_vers.value == abi.FFA_VERSION_1_2


@pytest.mark.parametrize(
    ("asked", "kept"),
    [
        (0x20000, abi.FFA_VERSION_1_2),  # other major: ours
        (0x10007, abi.FFA_VERSION_1_2),  # higher minor: ours
        (abi.FFA_VERSION_1_0, abi.FFA_VERSION_1_0),
    ],
)
def test_version_negotiated_value(system: System, asked: int, kept: int) -> None:
    vm = system.create_vm()
    vm.smc(abi.FFA_VERSION, asked)
    vm.smc(abi.FFA_ID_GET)
    assert vm.domain.tee is not None and vm.domain.tee.guest_vers.value == kept


def test_version_with_bit_31_set_is_not_supported(system: System) -> None:
    vm = system.create_vm()
    assert vm.smc(abi.FFA_VERSION, 0x80010001) == abi.regs(0xFFFFFFFF)
    assert code(vm.smc(abi.FFA_ID_GET)) == abi.FFA_RET_NOT_SUPPORTED  # nothing negotiated


def test_id_get_is_domid_plus_one(system: System) -> None:
    vms = [system.create_vm() for _ in range(3)]
    for vm in vms:
        negotiate(vm)
        assert vm.smc(abi.FFA_ID_GET) == abi.success(vm.domid + 1)


def test_non_ffa_smc_gets_smccc_not_supported(system: System) -> None:
    vm = system.create_vm()
    assert vm.smc(0x84000000)[0] == MASK64  # PSCI_VERSION: not the mediator's
    assert vm.smc(0x8400008F)[0] == MASK64  # above FF-A's routed range
    assert vm.smc(0xC6000000)[0] == MASK64  # another service


@pytest.mark.parametrize(
    "fid",
    [
        abi.FFA_MSG_POLL,
        abi.FFA_MSG_WAIT,
        abi.FFA_MEM_DONATE_32,
        abi.FFA_MEM_LEND_64,
        abi.FFA_MEM_RETRIEVE_REQ_64,
        abi.FFA_MEM_FRAG_TX,
        abi.FFA_NOTIFICATION_BITMAP_CREATE,
        abi.FFA_RX_ACQUIRE,
        abi.FFA_SPM_ID_GET,
        abi.FFA_CONSOLE_LOG_64,
    ],
)
def test_unhandled_ffa_calls_are_not_supported(system: System, fid: int) -> None:
    vm = system.create_vm()
    negotiate(vm)
    assert vm.smc(fid) == abi.error(abi.FFA_RET_NOT_SUPPORTED)


def features(vm, fid: int, *rest: int) -> abi.Regs:  # type: ignore[no-untyped-def]
    return vm.smc(abi.FFA_FEATURES, fid, *rest)


def test_features_rxtx_map_reports_max_pages_to_v1_2_only(system: System) -> None:
    a, b = system.create_vm(), system.create_vm()
    negotiate(a, abi.FFA_VERSION_1_2)
    negotiate(b, abi.FFA_VERSION_1_1)
    assert features(a, abi.FFA_RXTX_MAP_64) == abi.success(1 << 16)
    assert features(b, abi.FFA_RXTX_MAP_64) == abi.success(0)


def test_features_interrupt_ids(system: System) -> None:
    vm = system.create_vm()
    negotiate(vm)
    assert features(vm, abi.FFA_FEAT_NOTIF_PEND_INTR) == abi.success(8)
    assert features(vm, abi.FFA_FEAT_SCHEDULE_RECV_INTR) == abi.success(9)
    assert code(features(vm, abi.FFA_FEAT_MANAGED_EXIT_INTR)) == abi.FFA_RET_NOT_SUPPORTED


@pytest.mark.parametrize(
    "fid",
    [
        abi.FFA_VERSION,
        abi.FFA_ID_GET,
        abi.FFA_RX_RELEASE,
        abi.FFA_PARTITION_INFO_GET,
        abi.FFA_MEM_SHARE_64,
        abi.FFA_MEM_RECLAIM,
        abi.FFA_MSG_SEND_DIRECT_REQ_32,
        abi.FFA_MSG_SEND_DIRECT_REQ_64,
        abi.FFA_RUN,
        abi.FFA_MSG_SEND_DIRECT_REQ2,
        abi.FFA_PARTITION_INFO_GET_REGS,
        abi.FFA_NOTIFICATION_GET,
        abi.FFA_INTERRUPT,
    ],
)
def test_features_supported_for_v1_2_guest(system: System, fid: int) -> None:
    vm = system.create_vm()
    negotiate(vm)
    assert code(features(vm, fid)) == 0


@pytest.mark.parametrize(
    "fid",
    [
        abi.FFA_NOTIFICATION_BITMAP_CREATE,
        abi.FFA_NOTIFICATION_BITMAP_DESTROY,
        abi.FFA_RX_ACQUIRE,
        abi.FFA_MEM_LEND_64,
        abi.FFA_YIELD,
        0x12345678,
    ],
)
def test_features_not_offered(system: System, fid: int) -> None:
    vm = system.create_vm()
    negotiate(vm)
    assert code(features(vm, fid)) == abi.FFA_RET_NOT_SUPPORTED


def test_features_req2_and_get_regs_need_v1_2(system: System) -> None:
    vm = system.create_vm()
    negotiate(vm, abi.FFA_VERSION_1_1)
    assert code(features(vm, abi.FFA_MSG_SEND_DIRECT_REQ2)) == abi.FFA_RET_NOT_SUPPORTED
    assert code(features(vm, abi.FFA_PARTITION_INFO_GET_REGS)) == abi.FFA_RET_NOT_SUPPORTED


def test_features_ignores_w2_to_w7(system: System) -> None:
    vm = system.create_vm()
    negotiate(vm)
    assert code(features(vm, abi.FFA_ID_GET, 1, 2, 3)) == 0


def test_req2_from_v1_1_guest_is_not_supported(system: System) -> None:
    vm = system.create_vm()
    negotiate(vm, abi.FFA_VERSION_1_1)
    r = vm.smc(abi.FFA_MSG_SEND_DIRECT_REQ2, abi.pack_target(vm.id, 0x8001))
    assert r == abi.error(abi.FFA_RET_NOT_SUPPORTED)


def test_vm_handle_exposes_names(system: System) -> None:
    vm = system.create_vm(vcpus=2, pages=8)
    assert (vm.domid, vm.id, vm.vcpus, vm.pages, vm.party) == (0, 1, 2, 8, "d0")
    assert vm.ctx(1) == "d0v1"
    assert vm.ipa(3) == 0x40003000
