"""The remaining rows of xen-mediator.md §1.17 for the reference mediator: firmware lacking an
ABI, descriptors too big for one page, odd SPMC answers, framework-message protocol errors."""

from __future__ import annotations

import pytest

from ffasim import abi
from ffasim.spmc import SecurePartition
from ffasim.system import VM, DomainCreationError, System
from ffasim.xen.ffa_private import FFA_ABI_BITNUM

from .helpers import TX_PAGE, code, mem_share, ready, reclaim, share_descriptor, share_pages


def lacks(system: System, fid: int) -> None:
    """The firmware did not report ``fid`` at boot."""
    system.xen.ffa_fw_abi_supported.discard(FFA_ABI_BITNUM(fid))


def test_share_without_firmware_mem_share_is_not_supported(vm: VM, system: System) -> None:
    lacks(system, abi.FFA_MEM_SHARE_64)
    assert code(mem_share(vm, share_descriptor(vm.id, 0x8002, [(vm.ipa(4), 1)]))) == (
        abi.FFA_RET_NOT_SUPPORTED
    )
    assert code(vm.smc(abi.FFA_FEATURES, abi.FFA_MEM_SHARE_64)) == abi.FFA_RET_NOT_SUPPORTED


def test_reclaim_without_firmware_mem_reclaim_is_not_supported(vm: VM, system: System) -> None:
    h = share_pages(vm, 4, 1)
    lacks(system, abi.FFA_MEM_RECLAIM)
    assert code(reclaim(vm, h)) == abi.FFA_RET_NOT_SUPPORTED


def test_send2_to_partition_without_firmware_send2_is_not_supported(vm: VM, system: System) -> None:
    import struct

    lacks(system, abi.FFA_MSG_SEND2)
    hdr = struct.pack("<IIIII", 0, 0, 40, (vm.id << 16) | 0x8001, 4)
    vm.write(vm.ipa(TX_PAGE), hdr.ljust(40, b"\0") + b"ping")
    assert code(vm.smc(abi.FFA_MSG_SEND2)) == abi.FFA_RET_NOT_SUPPORTED


def test_send2_to_partition_without_rx_acquire_is_not_supported(vm: VM, system: System) -> None:
    import struct

    lacks(system, abi.FFA_RX_ACQUIRE)
    hdr = struct.pack("<IIIII", 0, 0, 40, (vm.id << 16) | 0x8001, 4)
    vm.write(vm.ipa(TX_PAGE), hdr.ljust(40, b"\0") + b"ping")
    assert code(vm.smc(abi.FFA_MSG_SEND2)) == abi.FFA_RET_NOT_SUPPORTED
    assert code(vm.smc(abi.FFA_FEATURES, abi.FFA_MSG_SEND2)) == abi.FFA_RET_NOT_SUPPORTED


def test_run_without_firmware_run_is_not_supported(vm: VM, system: System) -> None:
    lacks(system, abi.FFA_RUN)
    assert code(vm.smc(abi.FFA_RUN, abi.pack_target(0x8001, 0))) == abi.FFA_RET_NOT_SUPPORTED


def test_descriptor_beyond_one_page_is_not_supported(system: System) -> None:
    # One contiguous IPA range of 251 pages whose frames are scattered: Xen's rebuilt
    # descriptor (v1.2 EMAD for a v1.2 SPMC) needs 251 ranges, 96 + 251 * 16 > 4096 bytes.
    vm = ready(system.create_vm(pages=300))
    for n in range(0, 252, 2):
        f = system.machine.heap.alloc_page(vm.party, tag="scattered")
        assert f is not None
        vm.domain.p2m.map(vm.ipa(4 + n) >> 12, f)
    desc = share_descriptor(vm.id, 0x8001, [(vm.ipa(4), 251)])
    assert code(mem_share(vm, desc)) == abi.FFA_RET_NOT_SUPPORTED
    assert vm.domain.refcnt == 1 and system.machine.held == []
    # 250 ranges still fit.
    desc = share_descriptor(vm.id, 0x8001, [(vm.ipa(4), 250)])
    assert code(mem_share(vm, desc)) == 0


def test_spmc_error_with_zero_code_is_not_supported(vm: VM, system: System) -> None:
    entry = system.conduit.entry
    system.conduit.entry = lambda c, r: (
        abi.regs(abi.FFA_ERROR) if r[0] == abi.FFA_MEM_SHARE_64 else entry(c, r)
    )
    assert code(mem_share(vm, share_descriptor(vm.id, 0x8002, [(vm.ipa(4), 1)]))) == (
        abi.FFA_RET_NOT_SUPPORTED
    )


def test_spmc_unexpected_share_reply_is_not_supported(vm: VM, system: System) -> None:
    entry = system.conduit.entry
    system.conduit.entry = lambda c, r: (
        abi.regs(abi.FFA_SUCCESS_64, 0, 1, 2) if r[0] == abi.FFA_MEM_SHARE_64 else entry(c, r)
    )
    assert code(mem_share(vm, share_descriptor(vm.id, 0x8002, [(vm.ipa(4), 1)]))) == (
        abi.FFA_RET_NOT_SUPPORTED
    )


def test_framework_reply_of_the_wrong_type_fails_creation() -> None:
    sp = SecurePartition(
        0x8001,
        "ffa5e000-0000-4000-8000-000000000001",
        properties=abi.FFA_PART_PROP_DIRECT_REQ_RECV | abi.FFA_PART_PROP_NOTIF_CREATED,
        on_vm_created=lambda vm_id: 0,
    )
    system = System(partitions=[sp])
    entry = system.conduit.entry
    # The SPMC answers VM_CREATED with a plain direct response.
    system.conduit.entry = lambda c, r: (
        abi.regs(abi.FFA_MSG_SEND_DIRECT_RESP_32, 0x80010000, 0)
        if r[0] == abi.FFA_MSG_SEND_DIRECT_REQ_32
        else entry(c, r)
    )
    with pytest.raises(DomainCreationError, match="error -5"):
        system.create_vm()


def test_vm_created_retry_gives_up_after_eleven_calls() -> None:
    calls = []

    def created(vm_id: int) -> int:
        calls.append(vm_id)
        return abi.FFA_RET_INTERRUPTED

    sp = SecurePartition(
        0x8001,
        "ffa5e000-0000-4000-8000-000000000001",
        properties=abi.FFA_PART_PROP_DIRECT_REQ_RECV | abi.FFA_PART_PROP_NOTIF_CREATED,
        on_vm_created=created,
    )
    system = System(partitions=[sp])
    with pytest.raises(DomainCreationError):
        system.create_vm()
    assert len(calls) == 11


def test_descriptor_for_a_v1_1_spmc_has_16_byte_emads(vm: VM, system: System) -> None:
    from ffasim.xen.ffa_private import FfaShmMem

    xen = system.xen
    tx = xen.ffa_spmc_tx.value
    assert tx is not None
    sizes = []
    for vers in (abi.FFA_VERSION_1_1, abi.FFA_VERSION_1_2):
        shm = FfaShmMem(sender_id=vm.id, ep_id=0x8002, page_count=2, pages=vm.domain.ram[4:6])
        assert xen.share_shm(shm, vers) == 0
        desc = system.machine.mem.read(tx.pa, 48, "test")
        sizes.append(int.from_bytes(desc[24:28], "little"))
        assert xen.ffa_spmc_reclaim(shm, 0) == 0
    assert sizes == [16, 32]


def test_spmc_too_old_is_no_firmware() -> None:
    system = System(spmc_version=abi.FFA_VERSION_1_0)
    assert system.xen.ffa_fw_version == 0
    assert system.audit() == []
