"""Notifications: BITMAP_CREATE/DESTROY, BIND/UNBIND, SET, GET, INFO_GET_64, and the SRI.

Mirrors Hafnium ``api_ffa_notification_*`` with ``src/ffa/spmc/notifications.c``
(hafnium-spmc.md §5.5). Only global notifications exist (per-vCPU ones are refused, as
Hafnium refuses them for VMs and partitions). A VM gets a bitmap from the hypervisor
(BITMAP_CREATE); a partition has one when its properties say it receives notifications.

The schedule-receiver interrupt (SRI) is raised whenever a notification becomes pending (and
when an indirect message fills an RX buffer): ``spmc.sri_pending`` is set, and ``spmc.on_sri``
runs once the SMC returns. The "delay SRI" flag is accepted from partitions and has the same
effect here, since the model returns to the normal world at the end of every call anyway.

Locks: the receiver's VM lock around everything done to its notifications
(``ffa_vm_find_locked``; ``ffa_vm_nwd_alloc`` for a bitmap create, both with ``nwd_vms_lock``
first for a VM). FFA_NOTIFICATION_INFO_GET_64 locks one endpoint at a time: the partitions,
then under ``nwd_vms_lock`` the hypervisor and the VMs (``ffa_vm_notifications_info_get``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import abi
from ..machine import spin_lock, spin_unlock
from .mailbox import Endpoint
from .spmc import HYP_ID, Handler, Regs, is_vm_id, success
from .vm import (
    NWD_VMS,
    SPMC_STATE,
    SRI,
    ffa_vm_find_locked,
    ffa_vm_nwd_alloc,
    ffa_vm_nwd_free,
    vm_lock,
    vm_unlock,
)

if TYPE_CHECKING:
    from .spmc import Spmc

INVALID = abi.FFA_RET_INVALID_PARAMETERS
FLAG_PER_VCPU = 1 << 0
FLAG_DELAY_SRI = 1 << 1
SET_FLAGS_VCPU_SHIFT = 16
SPMD_LP_MIN = 0xFFC0  # SPMD logical partitions 0xFFC0..0xFFFF
GET_FLAGS_ALL = 0xF
# FFA_NOTIFICATION_INFO_GET_64: at most 20 16-bit IDs in x3..x7.
INFO_GET_MAX_IDS = 20


def _bitmap(r: Regs) -> int:
    return (r[3] & abi.MASK32) | ((r[4] & abi.MASK32) << 32)


def ffa_notification_bitmap_create(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_NOTIFICATION_BITMAP_CREATE: w1 VM ID, w2 vCPU count (hypervisor only)."""
    vm_id = r[1] & 0xFFFF
    if ep.id != HYP_ID:
        return spmc.refuse(abi.FFA_RET_NOT_SUPPORTED, "BITMAP_CREATE from a partition")
    if not is_vm_id(vm_id):
        return spmc.refuse(INVALID, f"BITMAP_CREATE for partition 0x{vm_id:x}")
    vm = ffa_vm_find_locked(spmc, vm_id) if vm_id == HYP_ID else ffa_vm_nwd_alloc(spmc, vm_id)
    if vm is None:
        return spmc.refuse(abi.FFA_RET_NO_MEMORY, f"BITMAP_CREATE: no VM slot for 0x{vm_id:x}")
    if vm.notif.enabled:
        vm_unlock(vm)
        return spmc.refuse(abi.FFA_RET_DENIED, f"BITMAP_CREATE: 0x{vm_id:x} already has one")
    vm.notif.enabled = True
    vm.notif.vcpu_count = r[2] & abi.MASK32
    vm_unlock(vm)
    return success()


def ffa_notification_bitmap_destroy(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_NOTIFICATION_BITMAP_DESTROY: w1 VM ID (hypervisor only)."""
    vm_id = r[1] & 0xFFFF
    if ep.id != HYP_ID:
        return spmc.refuse(abi.FFA_RET_NOT_SUPPORTED, "BITMAP_DESTROY from a partition")
    if not is_vm_id(vm_id):
        return spmc.refuse(INVALID, f"BITMAP_DESTROY for partition 0x{vm_id:x}")
    vm = ffa_vm_find_locked(spmc, vm_id)
    if vm is None or not vm.notif.enabled:
        if vm is not None:
            vm_unlock(vm)
        return spmc.refuse(abi.FFA_RET_DENIED, f"BITMAP_DESTROY: 0x{vm_id:x} has no bitmap")
    # Hafnium ffa_notifications_bitmap_destroy asks vm_are_notifications_pending(vm, false,
    # ~0): only global notifications from partitions block; a pending framework bit (the
    # RX-full of an indirect message) does not, and survives the destroy.
    if vm.notif.pending_sp:
        vm_unlock(vm)
        return spmc.refuse(abi.FFA_RET_DENIED, f"BITMAP_DESTROY: 0x{vm_id:x} has pending bits")
    vm.notif.enabled = False
    vm.notif.bindings_sp.clear()
    vm.notif.bindings_vm.clear()
    vm.notif.info_get_due = False
    ffa_vm_nwd_free(spmc, vm)
    vm_unlock(vm)
    return success()


def _bind_common(spmc: Spmc, ep: Endpoint, r: Regs, bind: bool) -> Regs:
    what = "BIND" if bind else "UNBIND"
    sender = abi.ffa_sender(r[1])
    receiver_id = abi.ffa_receiver(r[1])
    flags = r[2] & abi.MASK32 if bind else 0
    bitmap = _bitmap(r)
    if flags & FLAG_PER_VCPU:
        return spmc.refuse(INVALID, f"{what}: per-vCPU notifications are not supported")
    if flags:
        return spmc.refuse(INVALID, f"{what}: flags MBZ")
    if sender == receiver_id or sender >= SPMD_LP_MIN:
        return spmc.refuse(INVALID, f"{what}: bad sender 0x{sender:x}")
    if ep.id == HYP_ID:
        if is_vm_id(sender) or not is_vm_id(receiver_id):
            return spmc.refuse(INVALID, f"{what}: the hypervisor binds a partition to a VM")
    elif receiver_id != ep.id:
        return spmc.refuse(INVALID, f"{what}: a partition binds only its own notifications")
    if not bitmap:
        return spmc.refuse(INVALID, f"{what}: empty bitmap")
    receiver = ffa_vm_find_locked(spmc, receiver_id)
    if receiver is None:
        return spmc.refuse(INVALID, f"{what}: unknown receiver 0x{receiver_id:x}")
    ret = _update_bindings(spmc, receiver, what, sender, bitmap, bind)
    vm_unlock(receiver)
    return ret


def _update_bindings(
    spmc: Spmc, receiver: Endpoint, what: str, sender: int, bitmap: int, bind: bool
) -> Regs:
    """The checks and the update of ``api_ffa_notification_update_bindings`` made with the
    receiver locked."""
    receiver_id = receiver.id
    if not receiver.notif.enabled or receiver.version < abi.FFA_VERSION_1_1:
        return spmc.refuse(abi.FFA_RET_NOT_SUPPORTED, f"{what}: 0x{receiver_id:x} has none")
    if bind and not is_vm_id(sender) and sender not in spmc.partitions:
        return spmc.refuse(INVALID, f"BIND: unknown partition 0x{sender:x}")
    notif = receiver.notif
    from_vm = is_vm_id(sender)
    bindings = notif.bindings_vm if from_vm else notif.bindings_sp
    # Bind: every bit must be unbound (even to this sender); unbind: bound to this sender.
    want = None if bind else sender
    if any(bindings.get(bit) != want for bit in _bits(bitmap)):
        return spmc.refuse(abi.FFA_RET_DENIED, f"{what}: bits of 0x{bitmap:x} bound otherwise")
    if bitmap & (notif.pending_vm if from_vm else notif.pending_sp):
        return spmc.refuse(abi.FFA_RET_DENIED, f"{what}: bits are pending")
    for bit in _bits(bitmap):
        if bind:
            bindings[bit] = sender
        else:
            del bindings[bit]
    return success()


def _bits(bitmap: int) -> list[int]:
    return [i for i in range(64) if bitmap >> i & 1]


def ffa_notification_bind(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_NOTIFICATION_BIND: let ``sender`` signal bits of ``receiver``."""
    return _bind_common(spmc, ep, r, bind=True)


def ffa_notification_unbind(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_NOTIFICATION_UNBIND."""
    return _bind_common(spmc, ep, r, bind=False)


def ffa_notification_set(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_NOTIFICATION_SET: mark bound bits pending and raise the SRI."""
    sender = abi.ffa_sender(r[1])
    receiver_id = abi.ffa_receiver(r[1])
    flags = r[2] & abi.MASK32
    bitmap = _bitmap(r)
    if flags & FLAG_PER_VCPU:
        return spmc.refuse(INVALID, "SET: per-vCPU notifications are not supported")
    if flags >> SET_FLAGS_VCPU_SHIFT:
        return spmc.refuse(INVALID, "SET: vCPU ID MBZ")
    if flags & ~(FLAG_PER_VCPU | FLAG_DELAY_SRI) & 0xFFFF:
        return spmc.refuse(INVALID, "SET: flags MBZ")
    if ep.id == HYP_ID:
        if not is_vm_id(sender) or is_vm_id(receiver_id):
            return spmc.refuse(INVALID, "SET: the hypervisor signals a partition for a VM")
    elif sender != ep.id:
        return spmc.refuse(INVALID, "SET: a partition signals as itself")
    if not bitmap:
        return spmc.refuse(INVALID, "SET: empty bitmap")
    if flags & FLAG_DELAY_SRI and is_vm_id(sender):
        return spmc.refuse(INVALID, "SET: delay-SRI from a VM")
    receiver = ffa_vm_find_locked(spmc, receiver_id) if receiver_id != sender else None
    if receiver is None:
        return spmc.refuse(INVALID, f"SET: unknown receiver 0x{receiver_id:x}")
    notif = receiver.notif
    if not notif.enabled:
        vm_unlock(receiver)
        return spmc.refuse(abi.FFA_RET_DENIED, f"SET: 0x{receiver_id:x} takes no notifications")
    bindings = notif.bindings_vm if is_vm_id(sender) else notif.bindings_sp
    if any(bindings.get(bit) != sender for bit in _bits(bitmap)):
        vm_unlock(receiver)
        return spmc.refuse(abi.FFA_RET_DENIED, "SET: bits not bound to this sender")
    if is_vm_id(sender):
        notif.pending_vm |= bitmap
    else:
        notif.pending_sp |= bitmap
    notif.info_get_due = True
    spmc.raise_sri()
    vm_unlock(receiver)
    return success()


def ffa_notification_get(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_NOTIFICATION_GET: return and clear the pending bits the flags ask for."""
    vcpu = abi.ffa_sender(r[1])
    receiver_id = abi.ffa_receiver(r[1])
    flags = r[2] & abi.MASK32
    if flags & ~GET_FLAGS_ALL:
        return spmc.refuse(INVALID, "GET: flags MBZ")
    if ep.id == HYP_ID:
        if not is_vm_id(receiver_id) or flags & (
            abi.FFA_NOTIF_FLAG_BITMAP_VM | abi.FFA_NOTIF_FLAG_BITMAP_HYP
        ):
            return spmc.refuse(INVALID, "GET: the hypervisor gets SP/SPM bits of VMs")
    elif receiver_id != ep.id:
        return spmc.refuse(INVALID, "GET: a partition gets only its own bits")
    receiver = ffa_vm_find_locked(spmc, receiver_id)
    if receiver is None or not receiver.notif.enabled:
        if receiver is not None:
            vm_unlock(receiver)
        # Hafnium asserts here for an unknown VM; the model answers INVALID_PARAMETERS.
        return spmc.refuse(INVALID, f"GET: 0x{receiver_id:x} has no notifications")
    notif = receiver.notif
    if vcpu >= max(1, notif.vcpu_count):
        vm_unlock(receiver)
        return spmc.refuse(INVALID, f"GET: vCPU {vcpu} out of range")
    from_sp = from_vm = framework = 0
    if flags & abi.FFA_NOTIF_FLAG_BITMAP_SP:
        from_sp, notif.pending_sp = notif.pending_sp, 0
    if flags & abi.FFA_NOTIF_FLAG_BITMAP_VM:
        from_vm, notif.pending_vm = notif.pending_vm, 0
    if flags & abi.FFA_NOTIF_FLAG_BITMAP_SPM:
        framework |= notif.pending_framework & abi.MASK32
    if flags & abi.FFA_NOTIF_FLAG_BITMAP_HYP:
        framework |= notif.pending_framework & (abi.MASK32 << 32)
    notif.pending_framework &= ~framework
    vm_unlock(receiver)
    return abi.success(
        from_sp & abi.MASK32,
        from_sp >> 32,
        from_vm & abi.MASK32,
        from_vm >> 32,
        framework & abi.MASK32,
        framework >> 32,
    )


def ffa_notification_info_get(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_NOTIFICATION_INFO_GET_64: IDs of endpoints with newly pending notifications."""
    if ep.id != HYP_ID:
        return spmc.refuse(abi.FFA_RET_NOT_SUPPORTED, "INFO_GET from a partition")
    spmc.machine.sink.access(SPMC_STATE, SRI, True)
    spmc.sri_pending = False
    # Hafnium api_ffa_notification_info_get: partitions first (in index order), then the
    # hypervisor, then the nwd_vms table in slot order (ffa_vm_notifications_info_get),
    # each locked in turn.
    listed: list[int] = []
    eps = spmc.endpoints
    more = False
    for sp_id in sorted(spmc.partitions):
        more = _info_get(eps[sp_id], listed)
        if more:
            break
    if not more:
        table = spmc.nwd_vms_lock
        spin_lock(table)
        spmc.machine.sink.access(SPMC_STATE, NWD_VMS, False)
        more = _info_get(eps[HYP_ID], listed)
        for vm_id in spmc.vm_slots:
            if more:
                break
            if vm_id is not None:
                more = _info_get(eps[vm_id], listed)
        spin_unlock(table)
    if not listed:
        return abi.error(abi.FFA_RET_NO_DATA)
    # One list per endpoint, each of size 1 (the ID alone: global notifications only), so
    # every 2-bit list-size field is 0.
    x2 = (1 if more else 0) | (len(listed) << abi.FFA_NOTIF_INFO_GET_ID_COUNT_SHIFT)
    ids = [0] * 5
    for i, e_id in enumerate(listed):
        ids[i // 4] |= e_id << (16 * (i % 4))
    return abi.success(x2, *ids, fid=abi.FFA_SUCCESS_64)


def _info_get(e: Endpoint, listed: list[int]) -> bool:
    """Hafnium ``vm_notifications_info_get`` under ``e``'s lock: list ``e`` if it has newly
    pending notifications; True when it would not fit (the list is full, more are pending)."""
    vm_lock(e)
    notif = e.notif
    due = notif.enabled and notif.info_get_due and notif.any_pending()
    full = due and len(listed) == INFO_GET_MAX_IDS
    if due and not full:
        listed.append(e.id)
        notif.info_get_due = False
    vm_unlock(e)
    return full


HANDLERS: dict[int, Handler] = {
    abi.FFA_NOTIFICATION_BITMAP_CREATE: ffa_notification_bitmap_create,
    abi.FFA_NOTIFICATION_BITMAP_DESTROY: ffa_notification_bitmap_destroy,
    abi.FFA_NOTIFICATION_BIND: ffa_notification_bind,
    abi.FFA_NOTIFICATION_UNBIND: ffa_notification_unbind,
    abi.FFA_NOTIFICATION_SET: ffa_notification_set,
    abi.FFA_NOTIFICATION_GET: ffa_notification_get,
    abi.FFA_NOTIFICATION_INFO_GET_64: ffa_notification_info_get,
}
