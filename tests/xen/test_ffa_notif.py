"""Notifications: BIND/UNBIND/SET/GET/INFO_GET, the SRI tasklet, vIRQ 8 (ffa_notif.c)."""

from __future__ import annotations

import pytest

from ffasim import abi
from ffasim.machine import Machine
from ffasim.system import VM, System

from .helpers import FaultSink, code, negotiate

ECHO = 0x8001


@pytest.fixture
def guest(system: System) -> VM:
    vm = system.create_vm(vcpus=2)
    negotiate(vm)
    return vm


def bind(vm: VM, sender: int = ECHO, flags: int = 0, bits: int = 1) -> int:
    return code(vm.smc(abi.FFA_NOTIFICATION_BIND, abi.pack_target(sender, vm.id), flags, bits, 0))


def test_sp_notification_reaches_the_vm_through_the_sri(system: System, guest: VM) -> None:
    assert bind(guest, bits=0b100) == 0
    sp = system.spmc.partitions[ECHO]
    assert code(sp.smc(abi.FFA_NOTIFICATION_SET, abi.pack_target(ECHO, guest.id), 0, 0b100)) == 0
    assert guest.pending_virqs(0) == []  # the tasklet has not run yet
    assert system.run_tasklets() == 1
    assert guest.pending_virqs(0) == [8] and guest.pending_virqs(1) == []
    r = guest.smc(abi.FFA_NOTIFICATION_INFO_GET_64)
    assert r == abi.regs(abi.FFA_SUCCESS_64, 0, 1 << 7, guest.id)
    assert code(guest.smc(abi.FFA_NOTIFICATION_INFO_GET_64)) == abi.FFA_RET_NO_DATA
    r = guest.smc(abi.FFA_NOTIFICATION_GET, guest.id, abi.FFA_NOTIF_FLAG_BITMAP_SP)
    assert r[0] == abi.FFA_SUCCESS_32 and (r[2], r[3]) == (0b100, 0)
    assert system.run_tasklets() == 0


def test_bind_for_another_receiver_is_invalid(guest: VM) -> None:
    r = guest.smc(abi.FFA_NOTIFICATION_BIND, abi.pack_target(ECHO, guest.id + 1), 0, 1)
    assert code(r) == abi.FFA_RET_INVALID_PARAMETERS


def test_bind_per_vcpu_is_denied(guest: VM) -> None:
    assert bind(guest, flags=1) == abi.FFA_RET_DENIED


def test_bind_to_a_vm_sender_is_not_supported(guest: VM) -> None:
    assert bind(guest, sender=guest.id + 1) == abi.FFA_RET_NOT_SUPPORTED


def test_bind_spmc_error_is_passed_through(guest: VM) -> None:
    assert bind(guest, bits=0) == abi.FFA_RET_INVALID_PARAMETERS  # empty bitmap: the SPMC


def test_unbind(guest: VM) -> None:
    assert bind(guest) == 0
    w1 = abi.pack_target(ECHO, guest.id)
    assert code(guest.smc(abi.FFA_NOTIFICATION_UNBIND, w1, 0, 1)) == 0
    assert code(guest.smc(abi.FFA_NOTIFICATION_UNBIND, w1, 0, 1)) == abi.FFA_RET_DENIED
    bad = abi.pack_target(ECHO, guest.id + 1)
    assert code(guest.smc(abi.FFA_NOTIFICATION_UNBIND, bad, 0, 1)) == abi.FFA_RET_INVALID_PARAMETERS
    vm_src = abi.pack_target(guest.id + 1, guest.id)
    assert code(guest.smc(abi.FFA_NOTIFICATION_UNBIND, vm_src, 0, 1)) == abi.FFA_RET_NOT_SUPPORTED


def test_set_to_a_partition_is_forwarded(system: System, guest: VM) -> None:
    # The SP must have bound the bit to this VM first.
    sp = system.spmc.partitions[ECHO]
    r = sp.smc(abi.FFA_NOTIFICATION_BIND, abi.pack_target(guest.id, ECHO), 0, 1)
    assert code(r) == 0
    w1 = abi.pack_target(guest.id, ECHO)
    assert code(guest.smc(abi.FFA_NOTIFICATION_SET, w1, 0, 1)) == 0


def test_set_wrong_sender_is_invalid(guest: VM) -> None:
    w1 = abi.pack_target(guest.id + 1, ECHO)
    assert code(guest.smc(abi.FFA_NOTIFICATION_SET, w1, 0, 1)) == abi.FFA_RET_INVALID_PARAMETERS


def test_set_to_a_vm_is_not_supported(guest: VM) -> None:
    w1 = abi.pack_target(guest.id, guest.id + 1)
    assert code(guest.smc(abi.FFA_NOTIFICATION_SET, w1, 0, 1)) == abi.FFA_RET_NOT_SUPPORTED


def test_get_for_another_receiver_is_invalid(guest: VM) -> None:
    r = guest.smc(abi.FFA_NOTIFICATION_GET, guest.id + 1, abi.FFA_NOTIF_FLAG_BITMAP_SP)
    assert code(r) == abi.FFA_RET_INVALID_PARAMETERS


def test_get_spmc_error_is_passed_through() -> None:
    sink = FaultSink()
    system = System(machine=Machine(sink))
    vm = system.create_vm()
    negotiate(vm)
    sink.faults["smc:FFA_NOTIFICATION_GET"] = [abi.FFA_RET_BUSY]
    r = vm.smc(abi.FFA_NOTIFICATION_GET, vm.id, abi.FFA_NOTIF_FLAG_BITMAP_SP)
    assert code(r) == abi.FFA_RET_BUSY


def test_get_hyp_flag_only_asks_nothing_of_the_spmc(guest: VM) -> None:
    r = guest.smc(abi.FFA_NOTIFICATION_GET, guest.id, abi.FFA_NOTIF_FLAG_BITMAP_HYP)
    assert r == abi.regs(abi.FFA_SUCCESS_32)


def test_notifications_without_firmware_support_are_not_supported() -> None:
    sink = FaultSink({"smc:FFA_FEATURES": [None, None, abi.FFA_RET_NOT_SUPPORTED]})
    system = System(machine=Machine(sink))
    assert not system.xen.fw_notif_enabled  # BITMAP_CREATE was refused
    vm = system.create_vm()
    negotiate(vm)
    assert code(vm.smc(abi.FFA_NOTIFICATION_INFO_GET_64)) == abi.FFA_RET_NOT_SUPPORTED
    r = vm.smc(abi.FFA_NOTIFICATION_GET, vm.id, 1)
    assert code(r) == abi.FFA_RET_NOT_SUPPORTED
    assert bind(vm) == abi.FFA_RET_NOT_SUPPORTED


def test_bitmap_create_failure_fails_domain_creation() -> None:
    from ffasim.system import DomainCreationError

    sink = FaultSink()
    system = System(machine=Machine(sink))
    sink.faults["smc:FFA_NOTIFICATION_BITMAP_CREATE"] = [abi.FFA_RET_NO_MEMORY]
    with pytest.raises(DomainCreationError) as e:
        system.create_vm()
    assert e.value.errno == -12
    assert system.audit() == []


def test_sri_for_a_destroyed_vm_is_ignored(system: System, guest: VM) -> None:
    assert bind(guest) == 0
    sp = system.spmc.partitions[ECHO]
    sp.smc(abi.FFA_NOTIFICATION_SET, abi.pack_target(ECHO, guest.id), 0, 1)
    xen = system.xen
    # The VM disappears between INFO_GET and the injection.
    xen.domains.pop(guest.domid)
    assert system.run_tasklets() == 1
    assert guest.pending_virqs(0) == []
