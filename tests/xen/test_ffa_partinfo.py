"""FFA_PARTITION_INFO_GET(_REGS), the SP cache and the VM created/destroyed messages
(ffa_partinfo.c)."""

from __future__ import annotations

import struct

import pytest

from ffasim import abi
from ffasim.machine import Machine
from ffasim.spmc import SecurePartition
from ffasim.system import VM, DomainCreationError, System

from .helpers import RX_PAGE, FaultSink, code, map_rxtx, negotiate, ready

ECHO_UUID = "ffa5e000-0000-4000-8000-000000008001"
MEMSVC_UUID = "ffa5e000-0000-4000-8000-000000008002"


def entries(vm: VM, count: int, size: int = 24) -> list[tuple[int, int, int, bytes]]:
    raw = vm.read(vm.ipa(RX_PAGE), count * size)
    out = []
    for n in range(count):
        e = raw[n * size : (n + 1) * size]
        ep, ctx, props = struct.unpack_from("<HHI", e)
        out.append((ep, ctx, props, e[8:24]))
    return out


def test_partinfo_lists_sps_then_the_v1_2_caller(vm: VM) -> None:
    r = vm.smc(abi.FFA_PARTITION_INFO_GET)
    assert r == abi.success(4, 24)
    got = entries(vm, 4)
    assert [e[0] for e in got] == [0x8001, 0x8002, 0x8003, vm.id]
    assert got[0][3] == abi.uuid_bytes(ECHO_UUID)
    assert got[3][1:] == (1, 0x10E, bytes(16))  # the VM: 1 vCPU, SEND|INDIRECT|NOTIF|AARCH64


def test_partinfo_hands_rx_to_the_guest_until_release(vm: VM) -> None:
    assert code(vm.smc(abi.FFA_PARTITION_INFO_GET)) == 0
    assert code(vm.smc(abi.FFA_PARTITION_INFO_GET)) == abi.FFA_RET_BUSY
    assert code(vm.smc(abi.FFA_RX_RELEASE)) == 0
    assert code(vm.smc(abi.FFA_PARTITION_INFO_GET)) == 0


def test_partinfo_v1_1_guest_does_not_see_itself(system: System) -> None:
    vm = ready(system.create_vm(), abi.FFA_VERSION_1_1)
    assert vm.smc(abi.FFA_PARTITION_INFO_GET) == abi.success(3, 24)


def test_partinfo_v1_0_guest_gets_8_byte_entries_and_no_size(system: System) -> None:
    vm = ready(system.create_vm(), abi.FFA_VERSION_1_0)
    assert vm.smc(abi.FFA_PARTITION_INFO_GET) == abi.success(3, 0)
    assert [e[0] for e in entries(vm, 3, 8)] == [0x8001, 0x8002, 0x8003]


def test_partinfo_count_only(vm: VM) -> None:
    assert vm.smc(abi.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, 1) == abi.success(4, 0)
    # The RX buffer was not taken.
    assert code(vm.smc(abi.FFA_RX_RELEASE)) == abi.FFA_RET_DENIED


def test_partinfo_unknown_flags_are_invalid(vm: VM) -> None:
    assert code(vm.smc(abi.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, 2)) == abi.FFA_RET_INVALID_PARAMETERS


def test_partinfo_count_flag_from_v1_0_guest_is_invalid(system: System) -> None:
    vm = ready(system.create_vm(), abi.FFA_VERSION_1_0)
    r = vm.smc(abi.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, 1)
    assert code(r) == abi.FFA_RET_INVALID_PARAMETERS


def test_partinfo_without_rx_is_denied(system: System) -> None:
    vm = system.create_vm()
    negotiate(vm)
    assert code(vm.smc(abi.FFA_PARTITION_INFO_GET)) == abi.FFA_RET_DENIED


def test_partinfo_by_uuid_returns_the_sp_with_uuid_zeroed(vm: VM) -> None:
    r = vm.smc(abi.FFA_PARTITION_INFO_GET, *abi.uuid_to_regs32(MEMSVC_UUID))
    assert r == abi.success(1, 24)
    assert entries(vm, 1)[0][0] == 0x8002 and entries(vm, 1)[0][3] == bytes(16)


def test_partinfo_unknown_uuid_is_invalid_and_rx_is_given_back(vm: VM) -> None:
    r = vm.smc(
        abi.FFA_PARTITION_INFO_GET, *abi.uuid_to_regs32("12345678-0000-0000-0000-0000000000aa")
    )
    assert code(r) == abi.FFA_RET_INVALID_PARAMETERS
    assert code(vm.smc(abi.FFA_RX_RELEASE)) == abi.FFA_RET_DENIED  # already free again


def test_partinfo_count_by_unknown_uuid_is_invalid(vm: VM) -> None:
    w = abi.uuid_to_regs32("12345678-0000-0000-0000-0000000000aa")
    assert code(vm.smc(abi.FFA_PARTITION_INFO_GET, *w, 1)) == abi.FFA_RET_INVALID_PARAMETERS


def test_partinfo_lists_other_vms_with_vm_to_vm() -> None:
    system = System(vm_to_vm=True)
    a = ready(system.create_vm(vcpus=2))
    b = ready(system.create_vm(vcpus=3))
    assert a.smc(abi.FFA_PARTITION_INFO_GET) == abi.success(5, 24)
    got = entries(a, 5)
    assert [(e[0], e[1]) for e in got[3:]] == [(a.id, 2), (b.id, 3)]
    assert b.smc(abi.FFA_PARTITION_INFO_GET, 0, 0, 0, 0, 1) == abi.success(5, 0)


def test_partinfo_too_many_entries_for_rx_is_no_memory() -> None:
    system = System(vm_to_vm=True, spmc_max_vms=200)
    vms = [ready(system.create_vm(pages=2)) for _ in range(170)]
    # 3 SPs + 170 VMs of 24 bytes do not fit one 4 KiB page.
    assert code(vms[0].smc(abi.FFA_PARTITION_INFO_GET)) == abi.FFA_RET_NO_MEMORY
    assert code(vms[0].smc(abi.FFA_RX_RELEASE)) == abi.FFA_RET_DENIED
    # The v1.0 layout (8 bytes an entry) fits.
    old = ready(system.create_vm(pages=2), abi.FFA_VERSION_1_0)
    assert old.smc(abi.FFA_PARTITION_INFO_GET) == abi.success(173, 0)


# -- FFA_PARTITION_INFO_GET_REGS ---------------------------------------------------------------


def get_regs(vm: VM, start: int = 0, tag: int = 0, uuid: bytes = bytes(16)) -> abi.Regs:
    lo, hi = abi.uuid_to_regs64(uuid)
    return vm.smc(abi.FFA_PARTITION_INFO_GET_REGS, lo, hi, start | (tag << 16))


def test_get_regs_returns_entries_in_registers(vm: VM) -> None:
    r = get_regs(vm)
    assert r[0] == abi.FFA_SUCCESS_64
    assert r[2] == (24 << 48) | (1 << 32) | (3 << 16) | 3
    ids = [r[3 + 3 * n] & 0xFFFF for n in range(4)]
    assert ids == [0x8001, 0x8002, 0x8003, vm.id]
    assert abi.uuid_from_regs64(r[4], r[5]) == abi.uuid_bytes(ECHO_UUID)


def test_get_regs_pages_through_more_than_five_entries() -> None:
    system = System(vm_to_vm=True)
    vms = [ready(system.create_vm()) for _ in range(4)]
    r = get_regs(vms[0])
    tag = (r[2] >> 32) & 0xFFFF
    assert r[2] & 0xFFFF == 6 and (r[2] >> 16) & 0xFFFF == 4
    r2 = get_regs(vms[0], start=5, tag=tag)
    assert r2[0] == abi.FFA_SUCCESS_64 and (r2[2] >> 16) & 0xFFFF == 6
    # Order: the SPs, the caller, then the other VMs: index 5 and 6 are d2 and d3.
    assert [r2[3] & 0xFFFF, r2[6] & 0xFFFF] == [vms[2].id, vms[3].id]


def test_get_regs_pages_through_vms_only_windows() -> None:
    system = System(vm_to_vm=True)
    vms = [ready(system.create_vm()) for _ in range(9)]
    r = get_regs(vms[0])
    tag = (r[2] >> 32) & 0xFFFF
    seen = [r[3 + 3 * n] & 0xFFFF for n in range(((r[2] >> 16) & 0xFFFF) + 1)]
    while (r[2] >> 16) & 0xFFFF != r[2] & 0xFFFF:
        start = ((r[2] >> 16) & 0xFFFF) + 1
        r = get_regs(vms[0], start=start, tag=tag)
        assert r[0] == abi.FFA_SUCCESS_64, abi.describe(r)
        seen += [r[3 + 3 * n] & 0xFFFF for n in range(((r[2] >> 16) & 0xFFFF) - start + 1)]
    assert seen == [0x8001, 0x8002, 0x8003] + [vm.id for vm in vms]


def test_get_regs_needs_v1_2(system: System) -> None:
    vm = ready(system.create_vm(), abi.FFA_VERSION_1_1)
    assert code(get_regs(vm)) == abi.FFA_RET_NOT_SUPPORTED


def test_get_regs_tag_with_start_zero_is_invalid(vm: VM) -> None:
    assert code(get_regs(vm, 0, 1)) == abi.FFA_RET_INVALID_PARAMETERS


def test_get_regs_stale_tag_is_retry(vm: VM) -> None:
    assert code(get_regs(vm, 1, 7)) == abi.FFA_RET_RETRY


def test_get_regs_start_past_the_end_is_invalid(vm: VM) -> None:
    assert code(get_regs(vm, 4, 1)) == abi.FFA_RET_INVALID_PARAMETERS
    assert code(get_regs(vm, 0xFFFC, 1)) == abi.FFA_RET_INVALID_PARAMETERS


def test_get_regs_unknown_uuid_is_invalid(vm: VM) -> None:
    assert code(get_regs(vm, uuid=b"\x01" * 16)) == abi.FFA_RET_INVALID_PARAMETERS


def test_get_regs_tag_changes_when_a_vm_appears() -> None:
    system = System(vm_to_vm=True)
    a = ready(system.create_vm())
    tag = (get_regs(a)[2] >> 32) & 0xFFFF
    ready(system.create_vm())
    assert code(get_regs(a, 1, tag)) == abi.FFA_RET_RETRY


# -- boot and VM created / destroyed -------------------------------------------------------------


def test_boot_partinfo_failure_means_no_firmware_and_buffers_released() -> None:
    sink = FaultSink({"smc:FFA_PARTITION_INFO_GET": abi.FFA_RET_ABORTED})
    system = System(machine=Machine(sink))
    assert system.xen.ffa_fw_version == 0
    assert system.xen.ffa_spmc_rx.value is None
    # The reference did not tell the SPMC to release a buffer it never filled.
    assert not [v for v in sink.violations if v[0] == "ownership"]
    assert system.audit() == []
    with pytest.raises(DomainCreationError):
        system.create_vm()


def test_boot_with_64_partitions_is_no_firmware_on_head_only() -> None:
    """head's ffa_partinfo_init refuses count >= FFA_MAX_NUM_SP (64), turning FF-A off for
    every guest; 64 is the most Xen supports, and reference takes them (docs/findings.md 7)."""

    def parts() -> list[SecurePartition]:
        return [SecurePartition(0x8001 + n, f"ffa5e000-0000-4000-8000-{n:012x}") for n in range(64)]

    assert System(partitions=parts(), variant="head").xen.ffa_fw_version == 0
    assert System(partitions=parts(), variant="reference").xen.ffa_fw_version != 0


def test_vm_created_and_destroyed_messages_reach_subscribers(system: System) -> None:
    echo = system.spmc.partitions[0x8001]
    vm = system.create_vm()
    assert echo.vms_created == [vm.id]  # type: ignore[attr-defined]
    system.destroy_vm(vm)
    assert echo.vms_destroyed == [vm.id]  # type: ignore[attr-defined]
    assert system.audit() == []


def sub(id_: int, created: int = 0, destroyed: int = 0) -> SecurePartition:
    props = (
        abi.FFA_PART_PROP_DIRECT_REQ_RECV
        | abi.FFA_PART_PROP_NOTIF_CREATED
        | abi.FFA_PART_PROP_NOTIF_DESTROYED
        | abi.FFA_PART_PROP_AARCH64_STATE
    )
    statuses = {"c": [created], "d": [destroyed]}

    def on_created(vm_id: int) -> int:
        return statuses["c"].pop(0) if statuses["c"] else 0

    def on_destroyed(vm_id: int) -> int:
        return statuses["d"].pop(0) if statuses["d"] else 0

    return SecurePartition(
        id_,
        f"ffa5e000-0000-4000-8000-{id_:012x}",
        properties=props,
        on_vm_created=on_created,
        on_vm_destroyed=on_destroyed,
    )


def test_vm_created_failure_fails_domain_creation_and_skips_unnotified(system: System) -> None:
    calls: list[tuple[int, str]] = []
    a, b = sub(0x8001), sub(0x8002, created=abi.FFA_RET_DENIED)
    for sp, name in ((a, "a"), (b, "b")):
        orig_c, orig_d = sp.on_vm_created, sp.on_vm_destroyed
        assert orig_c is not None and orig_d is not None

        def oc(v: int, n: str = name, f=orig_c) -> int:  # type: ignore[no-untyped-def]
            calls.append((v, n + "+"))
            return f(v)

        def od(v: int, n: str = name, f=orig_d) -> int:  # type: ignore[no-untyped-def]
            calls.append((v, n + "-"))
            return f(v)

        sp.on_vm_created, sp.on_vm_destroyed = oc, od
    system = System(partitions=[a, b])
    with pytest.raises(DomainCreationError) as e:
        system.create_vm()
    assert e.value.errno == -5
    # a was told of the creation and then of the destruction; b never of either.
    assert calls == [(1, "a+"), (1, "b+"), (1, "a-")]
    assert system.audit() == []


def test_vm_destroyed_retry_goes_through_the_teardown_timer() -> None:
    p = sub(0x8001, destroyed=abi.FFA_RET_RETRY)
    # RETRY eleven times (the in-call retries), then OK from the timer.
    system = System(partitions=[p])
    n = {"calls": 0}

    def destroyed(vm_id: int) -> int:
        n["calls"] += 1
        return abi.FFA_RET_RETRY if n["calls"] <= 11 else 0

    p.on_vm_destroyed = destroyed
    vm = system.create_vm()
    system.destroy_vm(vm)
    assert n["calls"] == 11
    assert system.audit() != []  # still queued, the domain held by the queued teardown
    assert system.run_timers(0.5) == 0
    assert system.run_timers(0.5) == 1
    assert n["calls"] == 12
    assert system.audit() == []


def test_vm_destroyed_permanent_error_is_dropped() -> None:
    p = sub(0x8001, destroyed=abi.FFA_RET_ABORTED)
    system = System(partitions=[p])
    system.destroy_vm(system.create_vm())
    assert system.run_timers() == 0
    assert system.audit() == []


def test_vm_destroyed_bitmap_allocation_failure_fails_creation() -> None:
    sink = FaultSink()
    system = System(machine=Machine(sink))
    sink.faults["alloc:xzalloc_array@ffa_partinfo_domain_init"] = [1]
    with pytest.raises(DomainCreationError) as e:
        system.create_vm()
    assert e.value.errno == -12
    assert system.audit() == []
    map_ok = ready(system.create_vm())
    assert map_ok.id == 2


def test_partinfo_map_rx_unmapped_guest_rx(system: System) -> None:
    vm = system.create_vm()
    negotiate(vm)
    assert code(map_rxtx(vm)) == 0
    assert code(vm.smc(abi.FFA_PARTITION_INFO_GET)) == 0
