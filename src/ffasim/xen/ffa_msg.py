"""Direct and indirect messages: DIRECT_REQ 32/64, DIRECT_REQ2, FFA_RUN, FFA_MSG_SEND2.
Mirrors ffa_msg.c (HEAD).

Direct requests go to SPs only and are forwarded as they are, once the sender is checked; the
reply is copied back (masked to 32 bits for an SMC32 reply), anything unexpected becomes ABORTED.
SEND2 to an SP is forwarded (the SPMC reads the VM's TX, mapped to it when it has RX_ACQUIRE);
SEND2 to a VM (VM-to-VM only) is copied by Xen from the sender's TX into the receiver's RX with a
v1.2 header, after taking producer ownership of that RX.

Locks: the sender's ``tx_lock`` (trylock, ``ffa_tx_acquire``) is held across the whole SEND2;
inside it, the receiver's ``rx_lock`` is taken and dropped by ``ffa_rx_acquire``.

Not modelled: FFA_YIELD/FFA_INTERRUPT replies beyond passing them through.
"""

from __future__ import annotations

import struct

from .. import abi
from .ffa_notif import FfaNotif
from .ffa_private import (
    FFA_ID_IS_SECURE,
    Domain,
    FfaCtx,
    GuestView,
    Regs,
    ffa_get_vm_id,
    ffa_set_regs,
    ffa_set_regs_error,
)

# struct ffa_part_msg_rxtx_1_1: flags, reserved, msg_offset, send_recv_id, msg_size (20 bytes).
FFA_PART_MSG_RXTX_1_1 = struct.Struct("<IIIII")
# struct ffa_part_msg_rxtx_1_2: the 1.1 fields, reserved2 u32, uuid u64[2] (40 bytes).
FFA_PART_MSG_RXTX_1_2 = struct.Struct("<IIIIIIQQ")
assert FFA_PART_MSG_RXTX_1_1.size == 20 and FFA_PART_MSG_RXTX_1_2.size == 40

_DIRECT_PASS = frozenset(
    {
        abi.FFA_ERROR,
        abi.FFA_SUCCESS_32,
        abi.FFA_SUCCESS_64,
        abi.FFA_MSG_SEND_DIRECT_RESP_32,
        abi.FFA_MSG_SEND_DIRECT_RESP_64,
        abi.FFA_YIELD,
        abi.FFA_INTERRUPT,
    }
)


class FfaMsg(FfaNotif):
    """ffa_msg.c: the functions of that file, as methods of the mediator."""

    def ffa_finish_direct_req_run(self, req: Regs) -> Regs:
        """Issue a direct request or FFA_RUN and shape the reply for the guest."""
        resp = self.smc(*req)
        x0 = resp[0]
        if x0 == abi.FFA_MSG_SEND_DIRECT_RESP2:
            return resp  # 17-register payload, copied whole
        if x0 not in _DIRECT_PASS:
            return ffa_set_regs_error(abi.FFA_RET_ABORTED)
        mask = abi.MASK64 if abi.is_64bit_fid(x0) else abi.MASK32
        return ffa_set_regs(x0, *(r & mask for r in resp[1:8]))

    def ffa_handle_msg_send_direct_req(self, d: Domain, regs: Regs, fid: int) -> Regs:
        if not self.ffa_fw_supports_fid(fid):
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        src_dst = regs[1] & abi.MASK32
        vm_id = ffa_get_vm_id(d)
        if (src_dst >> 16) != vm_id or (src_dst & 0xFFFF) == vm_id:
            self.printk(f"direct req invalid src/dst {src_dst:#x}")
            return ffa_set_regs_error(abi.FFA_RET_INVALID_PARAMETERS)
        if not FFA_ID_IS_SECURE(src_dst & 0xFFFF):
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)  # no direct messages to VMs
        mask = abi.MASK64 if abi.is_64bit_fid(fid) else abi.MASK32
        args = [fid, src_dst, *(r & mask for r in regs[2:8])]
        if fid == abi.FFA_MSG_SEND_DIRECT_REQ2:
            args += regs[8:18]  # 17 registers for REQ2
        return self.ffa_finish_direct_req_run(abi.regs(*args))

    def ffa_msg_send2_vm(
        self, src_d: Domain, dst_id: int, view: GuestView, hdr: tuple[int, ...]
    ) -> int:
        """Deliver a message to VM ``dst_id``: v1.2 header then the payload, in its RX."""
        _flags, _res, msg_offset, send_recv_id, msg_size, _res2, uuid0, uuid1 = hdr
        ret, dst_d = self.ffa_endpoint_domain_lookup(src_d, dst_id)
        if ret or dst_d is None:
            return ret or abi.FFA_RET_INVALID_PARAMETERS
        dst_ctx = dst_d.tee
        assert dst_ctx is not None
        ret, rx_buf, rx_size = self.ffa_rx_acquire(dst_ctx)
        if ret:
            return ret
        if rx_size - FFA_PART_MSG_RXTX_1_2.size < msg_size:
            self.ffa_rx_release(dst_ctx)
            return abi.FFA_RET_NO_MEMORY
        dst_hdr = FFA_PART_MSG_RXTX_1_2.pack(
            0, 0, FFA_PART_MSG_RXTX_1_2.size, send_recv_id, msg_size, 0, uuid0, uuid1
        )
        payload = view.get(msg_offset, msg_size)
        self.machine.mem.write(rx_buf, dst_hdr + payload, "xen")
        # The receiver releases its RX when it has read the message.
        self.ffa_raise_rx_buffer_full(dst_d)
        return abi.FFA_RET_OK

    def ffa_handle_msg_send2(self, d: Domain, regs: Regs) -> int:
        src_ctx = d.tee
        assert src_ctx is not None
        ret, tx_buf, tx_size = self.ffa_tx_acquire(src_ctx)
        if ret != abi.FFA_RET_OK:
            return ret
        ret = self._msg_send2_tx_locked(d, src_ctx, tx_buf, tx_size)
        self.ffa_tx_release(src_ctx)  # out:
        return ret

    def _msg_send2_tx_locked(self, d: Domain, src_ctx: FfaCtx, tx_buf: int, tx_size: int) -> int:
        view = GuestView(self.machine, tx_buf, tx_size)
        # One copy of the header; validation and use both read the copy (c447b7308b).
        hdr = list(FFA_PART_MSG_RXTX_1_2.unpack(view.get(0, FFA_PART_MSG_RXTX_1_2.size)))
        msg_offset, send_recv_id, msg_size = hdr[2], hdr[3], hdr[4]
        src_id = send_recv_id >> 16
        dst_id = send_recv_id & 0xFFFF
        vm_id = ffa_get_vm_id(d)
        if src_id != vm_id or dst_id == vm_id:
            return abi.FFA_RET_INVALID_PARAMETERS
        if src_ctx.guest_vers.read() < abi.FFA_VERSION_1_2:
            if msg_offset < FFA_PART_MSG_RXTX_1_1.size:
                return abi.FFA_RET_INVALID_PARAMETERS
            hdr[6] = hdr[7] = 0  # a v1.1 sender has no UUID: nil
        elif msg_offset < FFA_PART_MSG_RXTX_1_2.size:
            return abi.FFA_RET_INVALID_PARAMETERS
        if msg_size == 0 or msg_offset > tx_size or msg_size > tx_size - msg_offset:
            return abi.FFA_RET_INVALID_PARAMETERS
        if FFA_ID_IS_SECURE(dst_id):
            if not self.ffa_fw_supports_fid(abi.FFA_MSG_SEND2):
                return abi.FFA_RET_NOT_SUPPORTED
            # The SPMC reads the VM's TX: it is mapped there only with RX_ACQUIRE.
            if not self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE):
                return abi.FFA_RET_NOT_SUPPORTED
            return self.ffa_simple_call(abi.FFA_MSG_SEND2, vm_id << 16, 0, 0, 0)
        if self.CONFIG_FFA_VM_TO_VM:
            return self.ffa_msg_send2_vm(d, dst_id, view, tuple(hdr))
        return abi.FFA_RET_INVALID_PARAMETERS

    def ffa_handle_run(self, d: Domain, regs: Regs, fid: int) -> Regs:
        if not self.ffa_fw_supports_fid(fid):
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        dst = regs[1] & abi.MASK32
        # Target in [31:16], vCPU in [15:0]; FFA_RUN to VMs is not supported.
        if not FFA_ID_IS_SECURE(dst >> 16):
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        return self.ffa_finish_direct_req_run(abi.regs(fid, dst))
