"""Messaging: direct requests (32/64, REQ2), VM availability messages, FFA_RUN, FFA_MSG_SEND2.

Mirrors Hafnium ``api_ffa_msg_send_direct_req`` with ``src/ffa/spmc/direct_messaging.c``
(hafnium-spmc.md §5.4) and ``api_ffa_msg_send2`` / ``src/ffa/spmc/indirect_messaging.c``.

A direct request runs the receiving partition's handler on one of its execution contexts,
nested in the caller's SMC: a partition with one context (UP) takes every request on it, one
with several (MP) on the context of the caller's CPU (``vm.cpu_index``: vCPU ``i`` of a VM calls
from CPU ``i``), as Hafnium's ``api_ffa_get_vm_vcpu`` picks it. A context that is not waiting
for a request (it runs a handler, or waits for the answer to a request it sent itself, as in a
cycle A -> B -> A) answers BUSY. Handlers of different contexts run at the same time and
interleave at the machine's scheduling points.

Locks, as Hafnium takes them: a direct request locks the receiver's VM, then the caller's and
the receiver's vCPUs (``vcpu_lock_both``), marks the receiver's context RUNNING and the
caller's BLOCKED, and drops all three before the handler runs; the response locks the
partition's vCPU to check the request, then both vCPUs again to hand the CPU back
(``api_ffa_msg_send_direct_resp``). FFA_RUN locks the caller's vCPU, then both. FFA_MSG_SEND2
locks the sender's VM, then the receiver's (``ffa_vm_find_locked``), whatever their IDs.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import abi
from ..machine import FirmwarePanic
from .mailbox import FULL, Endpoint
from .partition import DirectMessage
from .spmc import HYP_ID, Handler, Regs, error, is_vm_id, success
from .vm import (
    BLOCKED,
    RUNNING,
    WAITING,
    Vcpu,
    api_ffa_get_vm_vcpu,
    cpu_index,
    current_vcpu,
    ffa_vm_find_locked,
    vcpu_lock,
    vcpu_lock_both,
    vcpu_unlock,
    version_unlocked,
    vm_lock,
    vm_unlock,
)

if TYPE_CHECKING:
    from .partition import SecurePartition
    from .spmc import Spmc

_FRAMEWORK = abi.FFA_MSG_FLAG_FRAMEWORK
INVALID = abi.FFA_RET_INVALID_PARAMETERS
# Indirect message header (FF-A v1.1 Table 15.x; v1.2 adds a reserved word and the UUID):
# flags, reserved, payload offset, receiver, sender, payload size [, reserved, uuid].
MSG_HDR_V1_1 = struct.Struct("<IIIHHI")
MSG_HDR_V1_2_SIZE = 40
assert MSG_HDR_V1_1.size == 20
# Framework notification bits set for an RX-full event (hafnium-spmc.md §2.3).
FRAMEWORK_RX_FULL_SPM = 1 << 0  # the sender is a partition
FRAMEWORK_RX_FULL_HYP = 1 << 32  # the sender is a VM
MSG_SEND2_FLAG_DELAY_SRI = 1 << 1
# Kind of the access a handler's start declares (key: the partition ID).
_SP_STATE = "sp"


def _response_regs(fid: int, sp_id: int, sender: int, payload: Sequence[int]) -> Regs:
    if fid == abi.FFA_MSG_SEND_DIRECT_REQ2:
        return abi.regs(
            abi.FFA_MSG_SEND_DIRECT_RESP2, abi.pack_target(sp_id, sender), 0, 0, *payload
        )
    mask = abi.MASK64 if fid == abi.FFA_MSG_SEND_DIRECT_REQ_64 else abi.MASK32
    resp = (
        abi.FFA_MSG_SEND_DIRECT_RESP_64
        if fid == abi.FFA_MSG_SEND_DIRECT_REQ_64
        else abi.FFA_MSG_SEND_DIRECT_RESP_32
    )
    return abi.regs(resp, abi.pack_target(sp_id, sender), 0, *(v & mask for v in payload))


def run_partition(spmc: Spmc, sp: SecurePartition, msg: DirectMessage) -> Regs:
    """Run ``sp``'s handler for ``msg``; turn its result into the partition's answer."""
    sink = spmc.machine.sink
    req = abi.regs(msg.fid, abi.pack_target(msg.sender, msg.receiver), 0, *msg.payload)
    sink.call("sp", sp.party, req)
    # Whatever the handler does to the partition's Python state before its first scheduling
    # point belongs to this step: declared, so that two contexts' handlers are ordered.
    sink.access(_SP_STATE, sp.id, True)
    if sp.handler is None:
        result: Sequence[int] = ()
    else:
        result = sp.handler(sp, msg)
    limit = 14 if msg.fid == abi.FFA_MSG_SEND_DIRECT_REQ2 else 5
    if (
        isinstance(result, tuple)
        and len(result) == abi.NUM_REGS
        and (result[0] & abi.MASK32) == abi.FFA_ERROR
    ):
        out = abi.regs(abi.FFA_ERROR, abi.pack_target(sp.id, msg.sender), result[2] & abi.MASK32)
    else:
        try:
            values = [int(v) for v in result]
        except (TypeError, ValueError):
            raise FirmwarePanic(f"{sp!r} handler returned {result!r}, not a payload") from None
        if len(values) > limit:
            raise FirmwarePanic(f"{sp!r} handler returned {len(values)} values (at most {limit})")
        out = _response_regs(msg.fid, sp.id, msg.sender, values)
    sink.ret("sp", sp.party, out)
    return out


def _check_vm_availability(spmc: Spmc, receiver: int, w2: int, r: Regs) -> int:
    """Hafnium ``check_vm_availability_message``: the partition exists and subscribed."""
    func = w2 & abi.FFA_MSG_TYPE_MASK
    if func not in (abi.FFA_MSG_SEND_VM_CREATED, abi.FFA_MSG_SEND_VM_DESTROYED):
        spmc.log(f"framework message 0x{w2:x} refused")
        return INVALID
    sp = spmc.partitions.get(receiver)
    bit = (
        abi.FFA_PART_PROP_NOTIF_CREATED
        if func == abi.FFA_MSG_SEND_VM_CREATED
        else abi.FFA_PART_PROP_NOTIF_DESTROYED
    )
    if sp is None or not sp.properties & bit:
        spmc.log(f"0x{receiver:x} is not subscribed to framework message {func}")
        return INVALID
    if (r[5] >> 16) & 0xFFFF or r[6] or r[7]:
        spmc.log(f"VM availability message to 0x{receiver:x}: reserved bits set (ignored)")
    return abi.FFA_RET_OK


def _run_vm_availability(spmc: Spmc, sp: SecurePartition, fid: int, sender: int, r: Regs) -> Regs:
    """Deliver a VM created/destroyed message; the hook's result is the response status."""
    func = r[2] & abi.FFA_MSG_TYPE_MASK
    sink = spmc.machine.sink
    sink.call("sp", sp.party, r)
    sink.access(_SP_STATE, sp.id, True)
    hook = sp.on_vm_created if func == abi.FFA_MSG_SEND_VM_CREATED else sp.on_vm_destroyed
    status = 0 if hook is None else int(hook(r[5] & 0xFFFF))
    wide = fid == abi.FFA_MSG_SEND_DIRECT_REQ_64
    resp = abi.FFA_MSG_SEND_DIRECT_RESP_64 if wide else abi.FFA_MSG_SEND_DIRECT_RESP_32
    status &= abi.MASK64 if wide else abi.MASK32
    out = abi.regs(resp, abi.pack_target(sp.id, sender), _FRAMEWORK | (func + 1), status)
    sink.ret("sp", sp.party, out)
    return out


def ffa_msg_send_direct_req(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_MSG_SEND_DIRECT_REQ_32/64 and FFA_MSG_SEND_DIRECT_REQ2, checks in the order of
    Hafnium ``api_ffa_msg_send_direct_req``: w2, framework messages, sender/receiver
    validity, receiver, REQ2 UUID, messaging-method support (DENIED), busy receiver."""
    fid = r[0]
    sender = abi.ffa_sender(r[1])
    receiver = abi.ffa_receiver(r[1])
    req2 = fid == abi.FFA_MSG_SEND_DIRECT_REQ2
    framework = False
    if not req2:
        w2 = r[2] & abi.MASK32
        framework = bool(w2 & _FRAMEWORK)
        if w2 and not framework:
            return spmc.refuse(INVALID, "direct request: w2 MBZ")
        if framework:
            ret = _check_vm_availability(spmc, receiver, w2, r)
            if ret:
                return error(ret)
    # Hafnium ffa_direct_msg_is_direct_request_valid (SPMC).
    if receiver == sender or not receiver & 0x8000:
        return spmc.refuse(INVALID, f"direct request to 0x{receiver:x}: not a partition")
    if ep.id == HYP_ID:
        if not is_vm_id(sender):
            return spmc.refuse(INVALID, "direct request: sender not NS")
    elif sender != ep.id:
        return spmc.refuse(INVALID, "direct request: sender is not caller")
    sp = spmc.partitions.get(receiver)
    if sp is None:
        return spmc.refuse(INVALID, f"direct request to 0x{receiver:x}: no such partition")
    uuid = b""
    if req2:
        uuid = abi.uuid_from_regs64(r[2], r[3])
        if uuid != abi.NIL_UUID and uuid != sp.uuid_bytes:
            return spmc.refuse(abi.FFA_RET_INVALID_PARAMETERS, "REQ2: unknown service UUID")
        # Hafnium ffa_direct_msg_is_direct_request_supported: both ends v1.2+, and the
        # receiver's manifest accepts REQ2.
        if (
            version_unlocked(spmc, ep) < abi.FFA_VERSION_1_2
            or (sp.ffa_version or spmc.version) < abi.FFA_VERSION_1_2
            or not sp.properties & abi.FFA_PART_PROP_DIRECT_REQ2_RECV
        ):
            return spmc.refuse(abi.FFA_RET_DENIED, f"0x{receiver:x} does not take REQ2")
    elif not sp.properties & abi.FFA_PART_PROP_DIRECT_REQ_RECV:
        return spmc.refuse(abi.FFA_RET_DENIED, f"0x{receiver:x} does not take direct requests")
    if ep.id != HYP_ID:
        src = spmc.partitions[ep.id]
        send_bit = abi.FFA_PART_PROP_DIRECT_REQ2_SEND if req2 else abi.FFA_PART_PROP_DIRECT_REQ_SEND
        if not src.properties & send_bit:
            return spmc.refuse(abi.FFA_RET_DENIED, f"0x{ep.id:x} may not send direct requests")
    # Hafnium: the receiver's vCPU for this CPU, then its VM's lock, then both vCPUs.
    cpu = cpu_index(spmc.machine)
    receiver_ep = spmc.endpoints[receiver]
    receiver_vcpu = api_ffa_get_vm_vcpu(receiver_ep, cpu)
    if receiver_vcpu is None:
        return spmc.refuse(INVALID, f"direct request: 0x{receiver:x} has no context for CPU {cpu}")
    current = current_vcpu(spmc, ep, cpu)
    vm_lock(receiver_ep)
    vcpu_lock_both(current, receiver_vcpu)
    state = receiver_vcpu.state
    if state is WAITING:
        receiver_vcpu.state = RUNNING
        receiver_vcpu.origin = sender
        current.state = BLOCKED
    vcpu_unlock(receiver_vcpu)
    vm_unlock(receiver_ep)
    vcpu_unlock(current)
    if state is not WAITING:
        return spmc.refuse(
            abi.FFA_RET_BUSY, f"0x{receiver:x} context {receiver_vcpu.index} is {state.lower()}"
        )
    if framework:
        out = _run_vm_availability(spmc, sp, fid, sender, r)
    else:
        payload = tuple(r[4:18]) if req2 else tuple(r[3:8])
        out = run_partition(spmc, sp, DirectMessage(sender, receiver, payload, fid, uuid))
    _direct_resp(receiver_vcpu, current)
    return out


def _direct_resp(vcpu: Vcpu, caller: Vcpu) -> None:
    """The partition's direct response, as ``api_ffa_msg_send_direct_resp`` takes it: check
    the request under the partition vCPU's lock, then hand the CPU back to the caller under
    both vCPUs' locks (``api_direct_resp_unwind_call_chain_resume_target``)."""
    vcpu_lock(vcpu)
    vcpu_unlock(vcpu)
    vcpu_lock_both(vcpu, caller)
    vcpu.state = WAITING
    vcpu.origin = None
    caller.state = RUNNING
    vcpu_unlock(caller)
    vcpu_unlock(vcpu)


def ffa_msg_send_direct_resp(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """A direct response outside a request: partitions answer by returning from their handler
    (Hafnium checks the caller's vCPU under its lock, and finds no request to answer)."""
    current = current_vcpu(spmc, ep, cpu_index(spmc.machine))
    vcpu_lock(current)
    vcpu_unlock(current)
    return spmc.refuse(abi.FFA_RET_DENIED, "direct response without a pending request")


def ffa_run(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_RUN: give a partition CPU cycles; model partitions are idle, so it answers
    FFA_MSG_WAIT at once."""
    current = current_vcpu(spmc, ep, cpu_index(spmc.machine))
    vcpu_lock(current)  # ffa_cpu_cycles_run_checks
    if ep.id != HYP_ID:
        vcpu_unlock(current)
        return spmc.refuse(abi.FFA_RET_NOT_SUPPORTED, "FFA_RUN from a partition")
    sp = spmc.partitions.get(abi.ffa_sender(r[1]))
    index = r[1] & 0xFFFF
    if sp is None or index >= max(1, sp.exec_ctx):
        vcpu_unlock(current)
        return spmc.refuse(abi.FFA_RET_INVALID_PARAMETERS, "FFA_RUN: no such partition vCPU")
    vcpu_unlock(current)
    vcpu = spmc.endpoints[sp.id].vcpus[index]
    vcpu_lock_both(current, vcpu)
    running = vcpu.state is not WAITING  # api_vcpu_prepare_run
    vcpu_unlock(vcpu)
    vcpu_unlock(current)
    if running:
        return spmc.refuse(abi.FFA_RET_BUSY, f"FFA_RUN: 0x{sp.id:x} context {index} is running")
    return abi.regs(abi.FFA_MSG_WAIT)


def _indirect_supported(spmc: Spmc, src: Endpoint, dst: Endpoint) -> bool:
    """Hafnium ``ffa_indirect_msg_is_supported`` (SPMC): both ends v1.1+, and partitions
    that declare indirect messaging (the SPMC knows nothing of VMs' configuration)."""
    if src.version < abi.FFA_VERSION_1_1 or dst.version < abi.FFA_VERSION_1_1:
        return False
    for ep in (src, dst):
        sp = spmc.partitions.get(ep.id)
        if sp is not None and not sp.properties & abi.FFA_PART_PROP_INDIRECT_MSGS:
            return False
    return True


def ffa_msg_send2(spmc: Spmc, ep: Endpoint, r: Regs) -> Regs:
    """FFA_MSG_SEND2: copy the message in the sender's TX into the receiver's RX.

    Mirrors Hafnium ``api_ffa_msg_send2`` and ``api_ffa_msg_send2_copy_data``, in order.
    """
    sender_id = abi.ffa_sender(r[1])
    flags = r[2] & abi.MASK32
    if ep.id != HYP_ID and sender_id:
        return spmc.refuse(INVALID, "MSG_SEND2: only the hypervisor names a sender")
    sender_id = sender_id or ep.id
    src = ffa_vm_find_locked(spmc, sender_id)
    if src is None:
        return spmc.refuse(abi.FFA_RET_DENIED, f"MSG_SEND2: unknown sender 0x{sender_id:x}")
    ret = _send2_from(spmc, src, flags)
    vm_unlock(src)  # out_unlock_sender:
    return ret


def _send2_from(spmc: Spmc, src: Endpoint, flags: int) -> Regs:
    """The part of ``api_ffa_msg_send2`` run with the sender locked."""
    sender_id = src.id
    tx = src.mailbox
    if not tx.mapped:
        return spmc.refuse(abi.FFA_RET_DENIED, f"MSG_SEND2: 0x{sender_id:x} has no TX buffer")
    buf = spmc.machine.mem.read(tx.tx, tx.size, "spmc")  # read once
    _hflags, _res, offset, receiver_id, hsender, size = MSG_HDR_V1_1.unpack_from(buf, 0)
    if hsender != sender_id:
        return spmc.refuse(INVALID, "MSG_SEND2: header sender is not the sender")
    if receiver_id == hsender:
        return spmc.refuse(INVALID, "MSG_SEND2: sender and receiver are the same")
    if flags and is_vm_id(hsender):
        return spmc.refuse(INVALID, "MSG_SEND2: flags from a VM")
    if flags & ~MSG_SEND2_FLAG_DELAY_SRI:
        return spmc.refuse(INVALID, "MSG_SEND2: flags MBZ")
    # The receiver's lock under the sender's, whichever ID is lower: as in Hafnium.
    dst = ffa_vm_find_locked(spmc, receiver_id)
    if dst is None:
        return spmc.refuse(INVALID, f"MSG_SEND2: unknown receiver 0x{receiver_id:x}")
    ret = _send2_to(spmc, src, dst, buf, offset, size)
    vm_unlock(dst)  # out_unlock_both:
    return ret


def _send2_to(spmc: Spmc, src: Endpoint, dst: Endpoint, buf: bytes, offset: int, size: int) -> Regs:
    """The part of ``api_ffa_msg_send2`` run with the sender and the receiver locked."""
    if not _indirect_supported(spmc, src, dst):
        return spmc.refuse(abi.FFA_RET_DENIED, "MSG_SEND2: indirect messaging not supported")
    mbox = dst.mailbox
    if mbox.busy():
        return spmc.refuse(abi.FFA_RET_BUSY, f"MSG_SEND2: RX of 0x{dst.id:x} is busy")
    hdr_size = MSG_HDR_V1_1.size if src.version < abi.FFA_VERSION_1_2 else MSG_HDR_V1_2_SIZE
    if offset < hdr_size:
        return spmc.refuse(INVALID, "MSG_SEND2: payload overlaps the header")
    if offset + size > min(src.mailbox.size, mbox.size):
        return spmc.refuse(INVALID, "MSG_SEND2: message too big")
    spmc.machine.mem.write(mbox.rx, buf[: offset + size], "spmc")
    spmc.mailbox_changed(dst.id)
    mbox.state = FULL
    mbox.recv_func = abi.FFA_MSG_SEND2
    if is_vm_id(dst.id) or dst.notif.enabled:
        dst.notif.pending_framework |= (
            FRAMEWORK_RX_FULL_HYP if is_vm_id(src.id) else FRAMEWORK_RX_FULL_SPM
        )
        dst.notif.info_get_due = True
        spmc.raise_sri()
    return success()


HANDLERS: dict[int, Handler] = {
    abi.FFA_MSG_SEND_DIRECT_REQ_32: ffa_msg_send_direct_req,
    abi.FFA_MSG_SEND_DIRECT_REQ_64: ffa_msg_send_direct_req,
    abi.FFA_MSG_SEND_DIRECT_REQ2: ffa_msg_send_direct_req,
    abi.FFA_MSG_SEND_DIRECT_RESP_32: ffa_msg_send_direct_resp,
    abi.FFA_MSG_SEND_DIRECT_RESP_64: ffa_msg_send_direct_resp,
    abi.FFA_MSG_SEND_DIRECT_RESP2: ffa_msg_send_direct_resp,
    abi.FFA_RUN: ffa_run,
    abi.FFA_MSG_SEND2: ffa_msg_send2,
}
