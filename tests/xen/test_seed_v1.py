"""Variant seed-v1: the seed patch's behaviour, its four known defects included, where they
show in a sequential run."""

from __future__ import annotations

import pytest

from ffasim import abi
from ffasim.machine import EventSink, HypervisorPanic, Machine, RecordingSink
from ffasim.machine.memory import Frame
from ffasim.system import VM, System

from .helpers import (
    FaultSink,
    code,
    mem_share,
    negotiate,
    ready,
    reclaim,
    share_descriptor,
    share_pages,
)


@pytest.fixture
def seed() -> System:
    return System(variant="seed-v1")


@pytest.fixture
def guest(seed: System) -> VM:
    return ready(seed.create_vm(), abi.FFA_VERSION_1_1)


def test_seed_answers_ffa_1_1_and_keeps_rx_acquire_unprobed(seed: System) -> None:
    vm = seed.create_vm()
    assert vm.smc(abi.FFA_VERSION, 0x10002) == abi.regs(abi.FFA_VERSION_1_1)
    assert not seed.xen.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE)
    assert seed.xen.ffa_fw_version == abi.FFA_VERSION_1_1


def test_seed_rxtx_map_is_not_forwarded(guest: VM, seed: System) -> None:
    assert guest.id not in seed.spmc.mailboxes or not seed.spmc.mailboxes[guest.id].mapped


def test_defect3_rx_release_after_failed_partinfo_is_denied_by_the_spmc() -> None:
    sink = FaultSink()
    system = System(variant="seed-v1", machine=Machine(sink))
    vm = ready(system.create_vm(), abi.FFA_VERSION_1_1)
    sink.faults["smc:FFA_PARTITION_INFO_GET"] = [abi.FFA_RET_BUSY]
    assert code(vm.smc(abi.FFA_PARTITION_INFO_GET)) == abi.FFA_RET_BUSY
    # Xen told the SPMC to take back a buffer the SPMC never filled: DENIED, an ownership
    # violation the SPMC reports.
    assert [k for k, _ in sink.violations] == ["ownership"]
    assert "RX_RELEASE of its own RX buffer refused (DENIED)" in sink.violations[0][1]


def test_reference_sends_no_rx_release_after_failed_partinfo_at_boot() -> None:
    sink = FaultSink({"smc:FFA_PARTITION_INFO_GET": abi.FFA_RET_BUSY})
    System(machine=Machine(sink))
    assert sink.violations == []
    sink = FaultSink({"smc:FFA_PARTITION_INFO_GET": abi.FFA_RET_BUSY})
    System(variant="seed-v1", machine=Machine(sink))
    assert [k for k, _ in sink.violations] == ["ownership"]


def test_defect1_assert_fires_when_another_cpu_holds_the_spmc_tx_lock(
    guest: VM, seed: System
) -> None:
    seed.xen.ffa_spmc_tx_lock.holder = "d1v0"  # another guest is inside share_shm
    desc = share_descriptor(guest.id, 0x8002, [(guest.ipa(4), 1)])
    with pytest.raises(HypervisorPanic, match=r"!spin_is_locked\(&ffa_spmc_tx_lock\)"):
        mem_share(guest, desc)


def test_defect1_assert_fires_when_another_cpu_holds_the_spmc_rx_lock(
    guest: VM, seed: System
) -> None:
    seed.xen.ffa_spmc_rx_lock.holder = "d1v0"  # another guest is in PARTITION_INFO_GET
    with pytest.raises(HypervisorPanic, match=r"!spin_is_locked\(&ffa_spmc_rx_lock\)"):
        guest.smc(abi.FFA_PARTITION_INFO_GET)


def test_reference_waits_instead_of_asserting(system: System) -> None:
    vm = ready(system.create_vm())
    system.xen.ffa_spmc_tx_lock.holder = "d1v0"
    desc = share_descriptor(vm.id, 0x8002, [(vm.ipa(4), 1)])
    from ffasim.machine import Deadlock

    with pytest.raises(Deadlock):  # a sequential run: it would spin until d1v0 unlocks
        mem_share(vm, desc)


def test_defect2_null_buffer_returns_with_the_lock_held() -> None:
    sink = FaultSink()
    system = System(variant="seed-v1", machine=Machine(sink))
    a = ready(system.create_vm(), abi.FFA_VERSION_1_1)
    b = ready(system.create_vm(), abi.FFA_VERSION_1_1)
    sink.faults["helper:ffa_rxtx_spmc_tx_acquire"] = [1]
    assert code(mem_share(a, share_descriptor(a.id, 0x8002, [(a.ipa(4), 1)]))) == (
        abi.FFA_RET_NOT_SUPPORTED
    )
    assert [lk.name for lk in system.machine.held_by("d0v0")] == ["ffa_spmc_tx_lock"]
    # The next user trips over it (the ASSERT of defect 1 first, in a debug build).
    with pytest.raises(HypervisorPanic):
        mem_share(b, share_descriptor(b.id, 0x8002, [(b.ipa(4), 1)]))


def test_defect2_partinfo_null_rx_leaks_the_lock() -> None:
    sink = FaultSink()
    system = System(variant="seed-v1", machine=Machine(sink))
    vm = ready(system.create_vm(), abi.FFA_VERSION_1_1)
    sink.faults["helper:ffa_rxtx_spmc_rx_acquire"] = [1]
    assert code(vm.smc(abi.FFA_PARTITION_INFO_GET)) == abi.FFA_RET_DENIED
    assert [lk.name for lk in system.machine.held] == ["ffa_spmc_rx_lock"]


class FreeOrder(RecordingSink):
    def __init__(self, faults: dict[str, int]) -> None:
        super().__init__()
        self.faults = faults
        self.order: list[str] = []

    def fault(self, site: str, choices: tuple[int, ...]) -> int | None:
        return self.faults.get(site)

    def page_free(self, frame: Frame) -> None:
        self.order.append(f"free {frame.tag}")

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        if layer == "smc" and args[0] == abi.FFA_RXTX_UNMAP:
            self.order.append("unmap")


def test_defect4_destroy_frees_before_it_unmaps() -> None:
    sink = FreeOrder({"smc:FFA_PARTITION_INFO_GET": abi.FFA_RET_ABORTED})
    System(variant="seed-v1", machine=Machine(sink))
    assert sink.order == ["free ffa_spmc_tx", "free ffa_spmc_rx", "unmap"]
    sink = FreeOrder({"smc:FFA_PARTITION_INFO_GET": abi.FFA_RET_ABORTED})
    System(machine=Machine(sink))
    assert sink.order == ["unmap", "free ffa_spmc_tx", "free ffa_spmc_rx"]


def test_defect4_destroy_unmaps_even_when_the_map_failed() -> None:
    sink = FreeOrder({"smc:FFA_RXTX_MAP_64": abi.FFA_RET_NO_MEMORY})
    System(variant="seed-v1", machine=Machine(sink))
    assert "unmap" in sink.order
    sink = FreeOrder({"smc:FFA_RXTX_MAP_64": abi.FFA_RET_NO_MEMORY})
    System(machine=Machine(sink))
    assert "unmap" not in sink.order


def test_seed_partinfo_is_live_and_count_returns_the_entry_size(guest: VM) -> None:
    assert guest.smc(abi.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, 1) == abi.success(3, 24)
    assert guest.smc(abi.FFA_PARTITION_INFO_GET) == abi.success(3, 24)


def test_seed_get_regs_run_and_req2_are_not_supported(seed: System) -> None:
    vm = seed.create_vm()
    negotiate(vm, abi.FFA_VERSION_1_1)
    for fid in (abi.FFA_PARTITION_INFO_GET_REGS, abi.FFA_RUN, abi.FFA_MSG_SEND_DIRECT_REQ2):
        assert vm.smc(fid, abi.pack_target(0x8001, 0)) == abi.error(abi.FFA_RET_NOT_SUPPORTED)


def test_seed_unhandled_fid_before_version_is_not_supported(seed: System) -> None:
    vm = seed.create_vm()
    assert code(vm.smc(abi.FFA_RUN)) == abi.FFA_RET_NOT_SUPPORTED
    assert vm.smc(abi.FFA_VERSION, 0x10001) == abi.regs(abi.FFA_VERSION_1_1)


def test_seed_features_rejects_nonzero_w2(seed: System) -> None:
    vm = seed.create_vm()
    negotiate(vm, abi.FFA_VERSION_1_1)
    assert code(vm.smc(abi.FFA_FEATURES, abi.FFA_ID_GET)) == 0
    assert code(vm.smc(abi.FFA_FEATURES, abi.FFA_ID_GET, 1)) == abi.FFA_RET_NOT_SUPPORTED
    assert code(vm.smc(abi.FFA_FEATURES, abi.FFA_RX_ACQUIRE)) == abi.FFA_RET_NOT_SUPPORTED


def test_seed_rxtx_unmap_ignores_rx_ownership(guest: VM) -> None:
    assert code(guest.smc(abi.FFA_PARTITION_INFO_GET)) == 0
    assert code(guest.smc(abi.FFA_RXTX_UNMAP)) == 0


def test_seed_send2_without_buffers_dereferences_null(seed: System) -> None:
    vm = seed.create_vm()
    negotiate(vm, abi.FFA_VERSION_1_1)
    with pytest.raises(HypervisorPanic, match="NULL pointer"):
        vm.smc(abi.FFA_MSG_SEND2)


def test_seed_notification_set_to_partition_is_not_supported(seed: System) -> None:
    vm = seed.create_vm()
    negotiate(vm, abi.FFA_VERSION_1_1)
    w1 = abi.pack_target(vm.id, 0x8001)
    assert code(vm.smc(abi.FFA_NOTIFICATION_SET, w1, 0, 1)) == abi.FFA_RET_NOT_SUPPORTED


def test_seed_share_stops_at_255_pages(seed: System) -> None:
    vm = ready(seed.create_vm(pages=260), abi.FFA_VERSION_1_1)
    r = mem_share(vm, share_descriptor(vm.id, 0x8001, [(vm.ipa(2), 256)]))
    assert code(r) == abi.FFA_RET_NO_MEMORY
    h = share_pages(vm, 2, 255, 0x8001)
    assert code(reclaim(vm, h)) == 0


def test_seed_share_ns_bit_is_not_supported(guest: VM) -> None:
    desc = share_descriptor(guest.id, 0x8002, [(guest.ipa(4), 1)], attr=0x2F | 0x40)
    assert code(mem_share(guest, desc)) == abi.FFA_RET_NOT_SUPPORTED


def test_seed_zero_size_emad_at_the_end_of_the_page_reads_past_the_mapping(guest: VM) -> None:
    import struct

    desc = bytearray(share_descriptor(guest.id, 0x8002, [(guest.ipa(4), 1)]))
    struct.pack_into("<II", desc, 24, 0, 1)  # EMAD size 0, count 1
    struct.pack_into("<I", desc, 32, 4096)  # EMAD at the very end of the 4 KiB TX page
    guest.write(guest.ipa(0), bytes(desc))
    with pytest.raises(HypervisorPanic, match=r"^data abort: Xen reads 0x1000\+2 of TX, past"):
        guest.smc(abi.FFA_MEM_SHARE_64, 4096, 4096, 0, 0)


def test_seed_frag_rx_reply_surfaces_as_a_positive_error(guest: VM, seed: System) -> None:
    entry = seed.conduit.entry
    seed.conduit.entry = lambda c, r: (
        abi.regs(abi.FFA_MEM_FRAG_RX, 5, 0, 64) if r[0] == abi.FFA_MEM_SHARE_64 else entry(c, r)
    )
    r = mem_share(guest, share_descriptor(guest.id, 0x8002, [(guest.ipa(4), 1)]))
    assert r == abi.regs(abi.FFA_ERROR, 0, 64)


def test_seed_direct_req_odd_reply_is_aborted_with_src_dst(guest: VM, seed: System) -> None:
    entry = seed.conduit.entry
    seed.conduit.entry = lambda c, r: (
        abi.regs(abi.FFA_INTERRUPT) if r[0] == abi.FFA_MSG_SEND_DIRECT_REQ_32 else entry(c, r)
    )
    w1 = abi.pack_target(guest.id, 0x8001)
    r = guest.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, w1)
    assert r == abi.regs(abi.FFA_ERROR, w1, abi.to_u32(abi.FFA_RET_ABORTED))


def test_seed_direct_req_64_error_is_sign_extended(guest: VM) -> None:
    w1 = abi.pack_target(guest.id, guest.id + 1)  # to a VM: NOT_SUPPORTED
    assert guest.smc(abi.FFA_MSG_SEND_DIRECT_REQ_64, w1) == abi.regs(abi.FFA_ERROR, 0, -1)
    assert guest.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, w1) == abi.regs(abi.FFA_ERROR, 0, 0xFFFFFFFF)


def test_seed_direct_req_to_self_is_forwarded(guest: VM, seed: System) -> None:
    w1 = abi.pack_target(guest.id, guest.id)
    # The seed does not check for self (the reference says INVALID_PARAMETERS): a VM is not
    # an SP, so NOT_SUPPORTED.
    assert code(guest.smc(abi.FFA_MSG_SEND_DIRECT_REQ_32, w1)) == abi.FFA_RET_NOT_SUPPORTED


def test_seed_vm_destroyed_retry_uses_the_ctx_after_free() -> None:
    from ffasim.spmc import SecurePartition

    sink = FaultSink()
    calls = {"n": 0}

    def destroyed(vm_id: int) -> int:
        calls["n"] += 1
        return abi.FFA_RET_RETRY if calls["n"] <= 11 else 0

    props = (
        abi.FFA_PART_PROP_DIRECT_REQ_RECV
        | abi.FFA_PART_PROP_NOTIF_DESTROYED
        | abi.FFA_PART_PROP_AARCH64_STATE
    )
    sp = SecurePartition(
        0x8001, "ffa5e000-0000-4000-8000-000000000001", properties=props, on_vm_destroyed=destroyed
    )
    system = System(partitions=[sp], variant="seed-v1", machine=Machine(sink))
    vm = system.create_vm()
    system.destroy_vm(vm)
    assert vm.domain.destroyed  # no reference held by the queued teardown
    assert system.run_timers() == 1
    assert [k for k, _ in sink.violations] == ["use-after-free"]


def test_seed_and_reference_run_side_by_side_with_an_event_sink() -> None:
    s1 = System(machine=Machine(EventSink()))
    s2 = System(variant="seed-v1", machine=Machine(EventSink()))
    a, b = ready(s1.create_vm()), ready(s2.create_vm(), abi.FFA_VERSION_1_1)
    assert a.smc(abi.FFA_PARTITION_INFO_GET) == abi.success(4, 24)
    assert b.smc(abi.FFA_PARTITION_INFO_GET) == abi.success(3, 24)
