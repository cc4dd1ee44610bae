"""The public System / VM API (design.md) and the domain lifecycle around the mediator."""

from __future__ import annotations

import pytest

from ffasim import abi
from ffasim.machine import AccessFault, Deadlock, EventSink, Machine, RecordingSink
from ffasim.system import DomainCreationError, DomainDestroyedError, System
from ffasim.xen import variants


class FaultSink(EventSink):
    """Injects ``faults[site]`` (a code, or a list consumed one per hit; None runs normally)."""

    def __init__(self, faults: dict[str, int | list[int | None]] | None = None) -> None:
        self.faults: dict[str, int | list[int | None]] = dict(faults or {})

    def fault(self, site: str, choices: tuple[int, ...]) -> int | None:
        plan = self.faults.get(site)
        if isinstance(plan, list):
            return plan.pop(0) if plan else None
        return plan


def test_default_system_boots_reference_with_three_partitions() -> None:
    system = System()
    assert system.variant == "reference"
    assert system.xen.ffa_fw_version == abi.FFA_VERSION_1_2
    assert [int.from_bytes(e[:2], "little") for e in system.xen.sp_list] == [
        0x8001,
        0x8002,
        0x8003,
    ]
    assert system.machine.current == "boot" and system.machine.held == []


def test_domids_count_up_and_ids_are_domid_plus_one() -> None:
    system = System()
    vms = [system.create_vm() for _ in range(3)]
    assert [(vm.domid, vm.id) for vm in vms] == [(0, 1), (1, 2), (2, 3)]
    assert system.vms == vms


def test_first_call_is_the_version_answer() -> None:
    vm = System().create_vm()
    assert vm.smc(abi.FFA_VERSION, 0x10002) == abi.regs(0x10002)


def test_smc_reports_call_and_return_in_the_vcpu_context() -> None:
    sink = RecordingSink()
    system = System(machine=Machine(sink))
    vm = system.create_vm(vcpus=2)
    sink.events.clear()
    vm.smc(abi.FFA_VERSION, 0x10002, vcpu=1)
    hvc = [e for e in sink.events if e[1] == "hvc"]
    assert hvc == [
        ("call", "hvc", "d0v1", abi.regs(abi.FFA_VERSION, 0x10002)),
        ("ret", "hvc", "d0v1", abi.regs(0x10002)),
    ]
    assert system.machine.current == "boot"


def test_smc_to_a_missing_vcpu_is_an_error() -> None:
    vm = System().create_vm(vcpus=1)
    with pytest.raises(ValueError, match="no vCPU 1"):
        vm.smc(abi.FFA_VERSION, 0x10002, vcpu=1)


def test_guest_ram_read_write_and_fault_outside() -> None:
    system = System()
    vm = system.create_vm(pages=4)
    vm.write(vm.ipa(1) + 4090, b"0123456789")  # crosses into page 2
    assert vm.read(vm.ipa(1) + 4090, 10) == b"0123456789"
    # RAM is physically contiguous.
    assert vm.domain.ram[1].pa + 4096 == vm.domain.ram[2].pa
    with pytest.raises(AccessFault):
        vm.read(vm.ipa(4), 1)
    with pytest.raises(AccessFault):
        vm.write(0x1000, b"x")


def test_destroyed_vm_refuses_calls_and_memory() -> None:
    system = System()
    vm = system.create_vm()
    system.destroy_vm(vm)
    assert vm not in system.vms
    with pytest.raises(DomainDestroyedError):
        vm.smc(abi.FFA_VERSION, 0x10002)
    with pytest.raises(DomainDestroyedError):
        vm.read(vm.ipa(0), 1)
    with pytest.raises(DomainDestroyedError):
        system.destroy_vm(vm)


def test_destroy_frees_ram_and_audit_is_clean() -> None:
    system = System()
    vm = system.create_vm(pages=8)
    frames = list(vm.domain.ram)
    system.destroy_vm(vm)
    assert all(f.owner is None for f in frames)
    assert system.audit() == []


def test_destroy_while_rx_owned_force_releases_it() -> None:
    system = System()
    vm = system.create_vm()
    vm.smc(abi.FFA_VERSION, 0x10002)
    vm.smc(abi.FFA_RXTX_MAP_64, vm.ipa(0), vm.ipa(1), 1)
    assert vm.smc(abi.FFA_PARTITION_INFO_GET)[0] == abi.FFA_SUCCESS_32
    system.destroy_vm(vm)
    assert system.audit() == []


def test_audit_reports_a_leaked_lock() -> None:
    system = System()
    vm = system.create_vm()
    ctx = vm.domain.tee
    assert ctx is not None
    system.machine.current = "d0v0"
    from ffasim.machine import spin_lock

    spin_lock(system.xen.ffa_spmc_tx_lock)
    system.machine.current = "boot"
    assert any("ffa_spmc_tx_lock" in line for line in system.audit())


def test_domain_pause_waits_for_vcpus_in_a_hypercall() -> None:
    class Leaving(EventSink):
        """Stands in for the scheduler: the vCPU in the hypercall leaves when we block."""

        def __init__(self) -> None:
            self.blocked: list[str] = []
            self.domain = None

        def block(self, lock):  # type: ignore[no-untyped-def]
            self.blocked.append(lock.name)
            assert self.domain is not None
            self.domain.in_hypercall = 0

    sink = Leaving()
    system = System(machine=Machine(sink))
    vm = system.create_vm()
    sink.domain = vm.domain  # type: ignore[assignment]
    vm.domain.in_hypercall = 1  # vCPU 0 is inside a call
    system.destroy_vm(vm)
    assert sink.blocked == ["d0.pause"]


def test_domain_pause_in_a_sequential_run_reports_the_hang() -> None:
    system = System()
    vm = system.create_vm()
    vm.domain.in_hypercall = 1
    with pytest.raises(Deadlock):
        system.destroy_vm(vm)


def test_two_variants_coexist() -> None:
    ref = System()
    seed = System(variant="seed-v1")
    a, b = ref.create_vm(), seed.create_vm()
    assert a.smc(abi.FFA_VERSION, 0x10002) == abi.regs(abi.FFA_VERSION_1_2)
    assert b.smc(abi.FFA_VERSION, 0x10002) == abi.regs(abi.FFA_VERSION_1_1)
    assert type(ref.xen) is not type(seed.xen)


def test_unknown_variant_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown mediator variant 'nope' \(known: reference"):
        System(variant="nope")


def test_variant_names_and_descriptions() -> None:
    assert variants.names() == [
        "reference",
        "seed-v1",
        "head",
        "xen-4.19",
        "xen-4.20",
        "xen-4.21",
        "xen-4.22",
    ]
    for name in variants.names():
        assert len(variants.describe(name)) > 100


def test_create_vm_refused_without_firmware_or_vm_to_vm() -> None:
    system = System(machine=Machine(FaultSink({"smc:FFA_VERSION": abi.FFA_RET_NOT_SUPPORTED})))
    assert system.xen.ffa_fw_version == 0
    with pytest.raises(DomainCreationError, match="error -19"):
        system.create_vm()
    # With VM-to-VM the mediator still loads.
    system = System(
        machine=Machine(FaultSink({"smc:FFA_VERSION": abi.FFA_RET_NOT_SUPPORTED})), vm_to_vm=True
    )
    vm = system.create_vm()
    assert vm.smc(abi.FFA_VERSION, 0x10002)[0] == abi.FFA_VERSION_1_2


def test_ctx_allocation_failure_fails_creation() -> None:
    sink = FaultSink()
    system = System(machine=Machine(sink))
    sink.faults["alloc:xzalloc@ffa_domain_init"] = [1]
    with pytest.raises(DomainCreationError, match="error -12"):
        system.create_vm()
    assert system.create_vm().id == 2
    assert system.audit() == []


def test_vm_without_ffa_gets_smccc_not_supported() -> None:
    sink = FaultSink()
    system = System(machine=Machine(sink))
    vm = system.create_vm()
    vm.domain.tee = None  # a domain created without tee = "ffa"
    assert vm.smc(abi.FFA_VERSION, 0x10002)[0] == (1 << 64) - 1
