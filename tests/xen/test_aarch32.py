"""AArch32 guests: what Xen does differently for a 32-bit domain (f42bacb20e and the VM
partition-info properties), and the 32-bit registers of the guest itself."""

from __future__ import annotations

import pytest

from ffasim import abi
from ffasim.guest import FfaDriver
from ffasim.system import VM, System

from .helpers import code, negotiate


def guest(system: System, arch: str = "aarch32", vers: int = abi.FFA_VERSION_1_2) -> VM:
    vm = system.create_vm(arch=arch)
    negotiate(vm, vers)
    return vm


def test_create_vm_arch_defaults_to_aarch64_and_rejects_unknown_names() -> None:
    system = System()
    assert system.create_vm().arch == "aarch64"
    assert system.create_vm(arch="aarch32").arch == "aarch32"
    with pytest.raises(
        ValueError, match=r"^unknown VM architecture 'x86' \(known: aarch64, aarch32\)$"
    ):
        system.create_vm(arch="x86")


@pytest.mark.parametrize(
    "fid",
    [abi.FFA_RXTX_MAP_64, abi.FFA_MEM_SHARE_64, abi.FFA_MSG_SEND_DIRECT_REQ_64],
    ids=abi.name,
)
def test_head_refuses_smc64_calls_from_a_32_bit_guest(fid: int) -> None:
    vm = guest(System(variant="head"))
    assert vm.smc(fid)[:3] == (abi.FFA_ERROR, 0, abi.to_u32(abi.FFA_RET_NOT_SUPPORTED))


def test_head_features_of_a_64_bit_id_is_not_supported_for_a_32_bit_guest() -> None:
    vm32 = guest(System(variant="head"))
    vm64 = guest(System(variant="head"), "aarch64")
    for fid in (abi.FFA_RXTX_MAP_64, abi.FFA_MEM_SHARE_64, abi.FFA_PARTITION_INFO_GET_REGS):
        assert code(vm32.smc(abi.FFA_FEATURES, fid)) == abi.FFA_RET_NOT_SUPPORTED
        assert code(vm64.smc(abi.FFA_FEATURES, fid)) == 0
    assert code(vm32.smc(abi.FFA_FEATURES, abi.FFA_RXTX_MAP_32)) == 0


def test_32_bit_guest_partition_info_entry_has_no_aarch64_bit() -> None:
    system = System(variant="reference", vm_to_vm=True)
    a = FfaDriver(guest(system))
    b = FfaDriver(guest(system, "aarch64"))
    a.map_buffers()
    b.map_buffers()
    props_a = {p.id: p.properties for p in a.partition_info() if p.id < 0x8000}
    props_b = {p.id: p.properties for p in b.partition_info() if p.id < 0x8000}
    # 0x0E: direct requests out, indirect messages, notifications; bit 8 for AArch64.
    assert props_a == props_b == {1: 0x0E, 2: 0x10E}


def test_xen_4_21_reports_every_vm_as_aarch32() -> None:
    """Before 6e8c62d457 ``is_64bit`` is read at domain init, before the builder sets the
    domain's type: a 64-bit VM is listed without the AArch64 bit."""
    system = System(variant="xen-4.21", vm_to_vm=True)
    a = FfaDriver(guest(system, "aarch64", abi.FFA_VERSION_1_1))
    b = FfaDriver(guest(system, "aarch64", abi.FFA_VERSION_1_1))
    a.map_buffers()
    b.map_buffers()
    assert {p.id: p.properties for p in a.partition_info() if p.id < 0x8000} == {2: 0x0E}


def test_x8_x17_are_zeroed_only_for_a_64_bit_v1_2_guest() -> None:
    system = System(variant="head")
    high = list(range(100, 110))
    vm64 = guest(system, "aarch64")
    vm32 = guest(system)
    r64 = vm64.smc(abi.FFA_ID_GET, *[0] * 7, *high)
    r32 = vm32.smc(abi.FFA_ID_GET, *[0] * 7, *high)
    assert r64[8:] == (0,) * 10
    assert r32[8:] == tuple(high)  # Xen never writes them for a 32-bit domain


def test_32_bit_guest_registers_hold_32_bits() -> None:
    system = System(variant="head")
    vm = guest(system)
    # The high halves of the guest's values cannot exist: an address above 4 GiB is its
    # low half, and Xen's answer is r0..r7 of 32 bits.
    r = vm.smc(abi.FFA_RXTX_MAP_32, (1 << 32) | vm.ipa(1), (1 << 32) | vm.ipa(0), 1)
    assert r[:3] == (abi.FFA_SUCCESS_32, 0, 0)
    assert vm.smc(0xFFFF_FFFF_8400_0063, 0x10002)[0] == abi.FFA_VERSION_1_2
    unknown = vm.smc(0x8400_0050)  # not an FF-A function: SMCCC NOT_SUPPORTED in r0
    assert unknown[0] == 0xFFFF_FFFF


def test_seed_serves_smc64_calls_from_a_32_bit_guest() -> None:
    """Before f42bacb20e nothing refused them: a 64-bit map from an AArch32 guest works."""
    vm = guest(System(variant="seed-v1"), vers=abi.FFA_VERSION_1_1)
    assert code(vm.smc(abi.FFA_RXTX_MAP_64, vm.ipa(1), vm.ipa(0), 1)) == 0


def test_driver_uses_smc32_for_an_aarch32_vm() -> None:
    system = System()
    drv = FfaDriver(guest(system))
    drv.map_buffers()
    assert drv.last_fid == abi.FFA_RXTX_MAP_32
    handle = drv.share(0x8002, 1)
    assert drv.last_fid == abi.FFA_MEM_SHARE_32
    drv.reclaim(handle)
    drv.notification_info_get(check=False)
    assert drv.last_fid == abi.FFA_NOTIFICATION_INFO_GET_32
