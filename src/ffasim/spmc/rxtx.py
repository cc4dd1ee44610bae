"""RX/TX buffers: FFA_RXTX_MAP_64, FFA_RXTX_UNMAP, FFA_RX_RELEASE, FFA_RX_ACQUIRE, FFA_MSG_WAIT.

Mirrors Hafnium ``api_ffa_rxtx_map`` / ``api_get_rxtx_description`` / ``api_vm_configure_pages``,
``api_ffa_rxtx_unmap``, ``api_ffa_rx_release`` / ``api_release_mailbox`` and
``api_ffa_rx_acquire`` (hafnium-spmc.md §2), v2.14 checks in their order:

- the hypervisor maps its own pair with real addresses, or forwards a VM's pair with
  ``x1 = x2 = x3 = 0`` and the endpoint RX/TX descriptor in its own TX buffer;
- normal-world RX/TX pages leave the SPMC's NS memory view while mapped (``spmc.ns_excluded``)
  so they can be neither shared nor mapped again; the SPMC is granted access to them;
- FFA_RX_RELEASE and FFA_RX_ACQUIRE move a mailbox between EMPTY, FULL and OTHER_WORLD_OWNED.

A hypervisor that releases or acquires a buffer it does not own is refused as Hafnium refuses it
and, because the hypervisor broke the ownership protocol, reported to the checker with
``sink.violation("ownership", ...)``.

Locks, as Hafnium takes them: the owner's VM lock around everything done to its mailbox
(``ffa_vm_find_locked``, with ``nwd_vms_lock`` first for a VM, or ``ffa_vm_find_locked_create``
for a mapping); a forwarded map reads the hypervisor's TX buffer under VM 0's lock first. A map
or unmap holds ``mm_stage1_lock`` inside the owner's lock, and for a normal-world owner takes
VM 0's lock inside that (``lock_other_world``): against the documented order, as in Hafnium.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from .. import abi
from ..machine import Frame, grant, revoke, spin_lock, spin_unlock
from ..machine.memory import MAX_MFN, PAGE_SIZE
from .mailbox import EMPTY, FULL, OTHER_WORLD_OWNED, Endpoint
from .spmc import HYP_ID, Handler, Regs, error, is_vm_id, success
from .vm import (
    declare_pages,
    ffa_vm_find_locked,
    ffa_vm_find_locked_create,
    ffa_vm_nwd_free,
    lock_other_world,
    unlock_other_world,
    version_unlocked,
    vm_lock,
    vm_unlock,
)

if TYPE_CHECKING:
    from .spmc import Spmc

# Hafnium v2.14: the page count must be exactly HF_MAILBOX_SIZE / 4 KiB.
RXTX_PAGE_COUNT = 1
# FF-A v1.1 Table 13.27 endpoint RX/TX descriptor: endpoint ID, reserved, RX composite offset,
# TX composite offset (Hafnium appends 4 bytes of padding; Xen's struct stops at 12).
RXTX_DESC = struct.Struct("<HHII")
# A composite header (16 bytes) followed by its first constituent: address u64, pages u32.
CONSTITUENT = struct.Struct("<QI")
COMPOSITE_SIZE = 16
# HF_INVALID_VM_ID: never a VM's FF-A ID.
INVALID_VM_ID = 0x7FFF


def _ns_frames(spmc: Spmc, pa: int, pages: int) -> list[Frame] | None:
    """The frames of ``pa`` if the range lies in the SPMC's NS view (NS DRAM, not an RX/TX
    buffer already, not lent or donated away), else None."""
    if not spmc.ns_range_ok(pa, pages):
        return None
    mem = spmc.machine.mem
    out = []
    declare_pages(spmc, range(pa // PAGE_SIZE, pa // PAGE_SIZE + pages), False)
    for i in range(pages):
        mfn = (pa // PAGE_SIZE) + i
        if mfn in spmc.ns_excluded or not spmc.sender_has_access(mfn):
            return None
        out.append(mem.frame(mfn))
    return out


def _sp_frames(spmc: Spmc, ep: Endpoint, pa: int, pages: int) -> list[Frame] | None:
    """The frames of ``pa`` if the partition owns them exclusively, else None."""
    first = pa // PAGE_SIZE
    if first + pages > MAX_MFN:
        return None
    mem = spmc.machine.mem
    out = []
    declare_pages(spmc, range(first, first + pages), False)
    for mfn in range(first, first + pages):
        f = mem.frame(mfn)
        if f.owner != ep.party or not f.secure or not spmc.sender_has_access(mfn):
            return None
        if mfn in spmc.page_share:
            return None
        out.append(f)
    return out


def _configure(spmc: Spmc, ep: Endpoint, tx: int, rx: int, pages: int) -> int:
    """Hafnium ``api_vm_configure_pages``: checks 4 to 10 of §2.1; maps on success. With the
    owner's lock and ``mm_stage1_lock`` held."""
    mbox = ep.mailbox
    if mbox.mapped:
        spmc.log(f"RXTX_MAP: endpoint 0x{ep.id:x} already has buffers")
        return abi.FFA_RET_DENIED
    if pages != RXTX_PAGE_COUNT:
        spmc.log(f"RXTX_MAP: page count {pages} is not {RXTX_PAGE_COUNT}")
        return abi.FFA_RET_INVALID_PARAMETERS
    if tx % PAGE_SIZE or rx % PAGE_SIZE:
        spmc.log("RXTX_MAP: buffer not 4 KiB aligned")
        return abi.FFA_RET_INVALID_PARAMETERS
    if tx == rx:  # v2.14 compares the first pages only
        spmc.log("RXTX_MAP: TX and RX are the same page")
        return abi.FFA_RET_INVALID_PARAMETERS
    if not is_vm_id(ep.id):
        rx_frames = _sp_frames(spmc, ep, rx, pages)
        tx_frames = _sp_frames(spmc, ep, tx, pages)
        if rx_frames is None or tx_frames is None:
            spmc.log(f"RXTX_MAP: 0x{ep.id:x} does not own its buffer pages exclusively")
            return abi.FFA_RET_INVALID_PARAMETERS
    else:
        # arch_other_world_vm_configure_rxtx_map: the pages leave the NS view (VM 0's).
        other = lock_other_world(spmc, ep)
        rx_frames = _ns_frames(spmc, rx, pages)
        tx_frames = _ns_frames(spmc, tx, pages)
        if rx_frames is None or tx_frames is None:
            unlock_other_world(ep, other)
            spmc.log(f"RXTX_MAP: buffers of 0x{ep.id:x} are not in the NS memory view")
            return abi.FFA_RET_DENIED
        for f in rx_frames + tx_frames:
            spmc.ns_excluded[f.mfn] = ep.id
        unlock_other_world(ep, other)
    for f in rx_frames + tx_frames:
        grant(f, "spmc")
    spmc.mailbox_changed(ep.id)
    mbox.rx_frames = rx_frames
    mbox.tx_frames = tx_frames
    return abi.FFA_RET_OK


def ffa_rxtx_map(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_RXTX_MAP_64: map the caller's pair, or (hypervisor, x1=x2=x3=0) a VM's."""
    tx, rx, pages = r[1], r[2], r[3]
    if ep.id != HYP_ID or tx or rx or pages:
        owner = ep
        vm_lock(ep)
    else:
        # Forwarded (api_get_rxtx_description): the endpoint RX/TX descriptor sits in the
        # hypervisor's TX buffer, read under the hypervisor's lock.
        vm_lock(ep)
        hyp_mbox = ep.mailbox
        if not hyp_mbox.mapped:
            vm_unlock(ep)
            return spmc.refuse(
                abi.FFA_RET_INVALID_PARAMETERS, "forwarded RXTX_MAP without hyp TX"
            )
        buf = spmc.machine.mem.read(hyp_mbox.tx, hyp_mbox.size, "spmc")  # read once
        vm_unlock(ep)
        vm_id, _reserved, rx_off, tx_off = RXTX_DESC.unpack_from(buf, 0)
        if max(rx_off, tx_off) > len(buf) - COMPOSITE_SIZE - CONSTITUENT.size:
            # Hafnium v2.14 trusts the offsets; reading past the page would be a bug there.
            return spmc.refuse(
                abi.FFA_RET_INVALID_PARAMETERS, "RX/TX descriptor offsets out of range"
            )
        rx, pages = CONSTITUENT.unpack_from(buf, rx_off + COMPOSITE_SIZE)
        tx, _tx_pages = CONSTITUENT.unpack_from(buf, tx_off + COMPOSITE_SIZE)
        if vm_id == INVALID_VM_ID:
            # Hafnium api_get_rxtx_description returns HF_INVALID_VM_ID both for "no
            # hypervisor TX" and for a descriptor naming 0x7FFF; both are answered alike.
            return spmc.refuse(
                abi.FFA_RET_INVALID_PARAMETERS, "forwarded RXTX_MAP for ID 0x7fff"
            )
        if not is_vm_id(vm_id):
            return spmc.refuse(abi.FFA_RET_DENIED, f"forwarded RXTX_MAP for partition 0x{vm_id:x}")
        found = ffa_vm_find_locked_create(spmc, vm_id)
        if found is None:
            return spmc.refuse(abi.FFA_RET_DENIED, f"no VM slot left for 0x{vm_id:x}")
        owner = found
    stage1 = spmc.mm_stage1_lock
    spin_lock(stage1)
    ret = _configure(spmc, owner, tx, rx, pages)
    spin_unlock(stage1)
    if ret != abi.FFA_RET_OK:
        ffa_vm_nwd_free(spmc, owner)  # a VM slot taken for this map only is given back
    vm_unlock(owner)
    return success() if ret == abi.FFA_RET_OK else error(ret)


def unmap_mailbox(spmc: Spmc, target: Endpoint) -> None:
    """Drop ``target``'s RX/TX mapping and give NS pages back to the NS view; with
    ``target``'s lock and ``mm_stage1_lock`` held."""
    mbox = target.mailbox
    other = lock_other_world(spmc, target) if is_vm_id(target.id) else target
    for f in mbox.rx_frames + mbox.tx_frames:
        revoke(f, "spmc")
        spmc.ns_excluded.pop(f.mfn, None)
    unlock_other_world(target, other)
    spmc.mailbox_changed(target.id)
    mbox.rx_frames = []
    mbox.tx_frames = []


def ffa_rxtx_unmap(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_RXTX_UNMAP: w1[31:16] names the endpoint (0: the caller)."""
    target_id = abi.ffa_sender(r[1])
    if ep.id == HYP_ID and not is_vm_id(target_id):
        return spmc.refuse(abi.FFA_RET_INVALID_PARAMETERS, "RXTX_UNMAP of a partition's buffers")
    if ep.id != HYP_ID and target_id:
        return spmc.refuse(abi.FFA_RET_INVALID_PARAMETERS, "RXTX_UNMAP: partition named an ID")
    target = ffa_vm_find_locked(spmc, target_id or ep.id)
    if target is None:
        return spmc.refuse(
            abi.FFA_RET_INVALID_PARAMETERS, f"RXTX_UNMAP: unknown VM 0x{target_id:x}"
        )
    if not target.mailbox.mapped:
        vm_unlock(target)
        return spmc.refuse(
            abi.FFA_RET_INVALID_PARAMETERS, f"RXTX_UNMAP: 0x{target.id:x} has no buffers"
        )
    stage1 = spmc.mm_stage1_lock
    spin_lock(stage1)
    unmap_mailbox(spmc, target)
    spin_unlock(stage1)
    ffa_vm_nwd_free(spmc, target)
    vm_unlock(target)
    return success()


def release_mailbox(spmc: Spmc, target: Endpoint) -> int:
    """Hafnium ``api_release_mailbox``: give ``target``'s RX back to the SPMC (``target``
    locked)."""
    mbox = target.mailbox
    if mbox.state is EMPTY:
        return abi.FFA_RET_DENIED
    if mbox.state is FULL:
        if target.notif.pending_framework:
            return abi.FFA_RET_DENIED
        spmc.mailbox_changed(target.id)
        mbox.state = EMPTY
        return abi.FFA_RET_OK
    # OTHER_WORLD_OWNED
    if not is_vm_id(target.id):
        return abi.FFA_RET_ABORTED
    spmc.mailbox_changed(target.id)
    mbox.state = EMPTY
    return abi.FFA_RET_OK


def ffa_rx_release(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_RX_RELEASE: w1[15:0] = VM ID when the hypervisor releases for a VM."""
    vm_id = abi.ffa_receiver(r[1])
    if ep.id != HYP_ID and vm_id:
        return spmc.refuse(abi.FFA_RET_INVALID_PARAMETERS, "RX_RELEASE: partition named an ID")
    if ep.id == HYP_ID:
        target = ffa_vm_find_locked(spmc, vm_id) if is_vm_id(vm_id) else None
    else:
        target = ffa_vm_find_locked(spmc, ep.id)
    if target is None:
        return spmc.refuse(abi.FFA_RET_INVALID_PARAMETERS, f"RX_RELEASE: unknown VM 0x{vm_id:x}")
    before = target.mailbox.state
    ret = release_mailbox(spmc, target)
    vm_unlock(target)
    if ret != abi.FFA_RET_OK:
        whose = "its own RX buffer" if target.id == HYP_ID else f"the RX buffer of VM 0x{vm_id:x}"
        why = (
            "the RX-full notification is still pending"
            if before is FULL
            else "the SPMC owns it (nothing to release)"
        )
        text = f"RX_RELEASE of {whose} refused ({abi.error_name(ret)}): {why}"
        spmc.log(text)
        if ep.id == HYP_ID:
            spmc.machine.sink.violation("ownership", f"hypervisor {text}")
        return error(ret)
    return success()


def ffa_rx_acquire(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_RX_ACQUIRE: the hypervisor takes a VM's RX buffer from the SPMC."""
    vm_id = abi.ffa_receiver(r[1])
    if ep.id != HYP_ID or not is_vm_id(vm_id):
        return spmc.refuse(abi.FFA_RET_NOT_SUPPORTED, "RX_ACQUIRE: only for the hypervisor")
    target = ffa_vm_find_locked(spmc, vm_id)  # ID 0 is the hypervisor's own mailbox, as in Hafnium
    if target is None or not target.mailbox.mapped:
        if target is not None:
            vm_unlock(target)
        return spmc.refuse(abi.FFA_RET_INVALID_PARAMETERS, f"RX_ACQUIRE: VM 0x{vm_id:x} has no RX")
    state = target.mailbox.state
    if state is not EMPTY:
        vm_unlock(target)
        text = f"RX_ACQUIRE of VM 0x{vm_id:x} refused (DENIED): its RX buffer is {state.value}"
        spmc.log(text)
        if state is OTHER_WORLD_OWNED:
            spmc.machine.sink.violation(
                "ownership", f"hypervisor acquires the RX buffer of VM 0x{vm_id:x} it already owns"
            )
        return error(abi.FFA_RET_DENIED)
    spmc.mailbox_changed(target.id)
    target.mailbox.state = OTHER_WORLD_OWNED
    vm_unlock(target)
    return success()


def ffa_msg_wait(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_MSG_WAIT from a partition: releases its RX buffer unless w2 bit 0 (retain) is set
    (Hafnium ``api_ffa_msg_wait``: x1 and x3..x7 MBZ; x8..x17 MBZ from v1.2, w2 MBZ before).

    The model has no idle partitions to resume, so the call answers FFA_SUCCESS_32 at once.
    """
    if ep.id == HYP_ID:
        return spmc.refuse(abi.FFA_RET_NOT_SUPPORTED, "MSG_WAIT from the normal world")
    if r[1] or any(r[3:8]):
        return spmc.refuse(abi.FFA_RET_INVALID_PARAMETERS, "MSG_WAIT: x1, x3..x7 MBZ")
    if version_unlocked(spmc, ep) >= abi.FFA_VERSION_1_2:
        if any(r[8:]):
            return spmc.refuse(abi.FFA_RET_INVALID_PARAMETERS, "MSG_WAIT: x8..x17 MBZ")
    elif r[2]:
        return spmc.refuse(abi.FFA_RET_INVALID_PARAMETERS, "MSG_WAIT: w2 MBZ before v1.2")
    if not r[2] & 1:
        # api_ffa_msg_wait_rx_release: under the partition's own lock; errors are ignored.
        vm_lock(ep)
        release_mailbox(spmc, ep)
        vm_unlock(ep)
    return success()


HANDLERS: dict[int, Handler] = {
    abi.FFA_RXTX_MAP_64: ffa_rxtx_map,
    abi.FFA_RXTX_UNMAP: ffa_rxtx_unmap,
    abi.FFA_RX_RELEASE: ffa_rx_release,
    abi.FFA_RX_ACQUIRE: ffa_rx_acquire,
    abi.FFA_MSG_WAIT: ffa_msg_wait,
}
