"""Direct and indirect messages: DIRECT_REQ 32/64, DIRECT_REQ2, FFA_RUN, FFA_MSG_SEND2.
Mirrors ffa_msg.c (upstream HEAD,
c447b7308b).

Direct requests go to SPs only and are forwarded as they are, once the sender is checked; the
reply is copied back (masked to 32 bits for an SMC32 reply), anything unexpected becomes ABORTED.
SEND2 to an SP is forwarded (the SPMC reads the VM's TX, mapped to it when it has RX_ACQUIRE);
SEND2 to a VM (VM-to-VM only) is copied by Xen from the sender's TX into the receiver's RX with a
v1.2 header, after taking producer ownership of that RX. The sender's header is read once (one
``memcpy`` into a local copy), and since c447b7308b a ``barrier()`` keeps the compiler from
reading its fields from the TX again; variants before that commit model the compilation that
does (``variants/xen_4_22.py``).

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
    MappedBuf,
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
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


def write_msg_1_2(rx_buf: MappedBuf, src_buf: MappedBuf, src_msg: FfaPartMsgRxtx) -> None:
    """The body of ``ffa_msg_send2_vm`` that fills the receiver's RX: the v1.2 header field by
    field (as the C assigns ``dst_msg->...``), then the payload ``memcpy`` from the sender's TX."""
    rx_buf.store(0, _U32.pack(0))  # flags
    rx_buf.store(4, _U32.pack(0))  # reserved
    rx_buf.store(8, _U32.pack(FFA_PART_MSG_RXTX_1_2.size))  # msg_offset
    rx_buf.store(12, _U32.pack(src_msg.send_recv_id))
    rx_buf.store(16, _U32.pack(src_msg.msg_size))
    rx_buf.store(20, _U32.pack(0))  # reserved2
    rx_buf.store(24, _U64.pack(src_msg.uuid0))
    rx_buf.store(32, _U64.pack(src_msg.uuid1))
    size = src_msg.msg_size
    rx_buf.store(FFA_PART_MSG_RXTX_1_2.size, src_buf.load(src_msg.msg_offset, size))


class FfaPartMsgRxtx:
    """Xen's local copy of a SEND2 header (``struct ffa_part_msg_rxtx``, 1.1 or 1.2 layout),
    made by one ``memcpy`` from the sender's TX (:meth:`copy`). Fields absent from a 1.1
    header read as 0."""

    __slots__ = ("flags", "msg_offset", "msg_size", "send_recv_id", "uuid0", "uuid1")

    def __init__(self, raw: bytes) -> None:
        raw = raw.ljust(FFA_PART_MSG_RXTX_1_2.size, b"\0")
        fields = FFA_PART_MSG_RXTX_1_2.unpack(raw)
        self.flags = fields[0]
        self.msg_offset = fields[2]
        self.send_recv_id = fields[3]
        self.msg_size = fields[4]
        self.uuid0 = fields[6]
        self.uuid1 = fields[7]

    @classmethod
    def copy(cls, tx: MappedBuf, size: int) -> FfaPartMsgRxtx:
        """``memcpy(&src_msg, tx_buf, size)``: one read of the sender's TX."""
        return cls(tx.load(0, size))


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
        self, src_d: Domain, dst_id: int, src_buf: MappedBuf, src_msg: FfaPartMsgRxtx
    ) -> int:
        """Deliver a message to VM ``dst_id``: a v1.2 header then the payload, in its RX (after
        taking producer ownership of it; the receiver releases it once it has read it)."""
        ret, dst_d = self.ffa_endpoint_domain_lookup(src_d, dst_id)
        if ret or dst_d is None:
            return ret  # this also checks that the destination is not the source
        dst_ctx = dst_d.tee
        assert dst_ctx is not None
        # This also checks that the destination has an RX buffer.
        ret, rx_buf, rx_size = self.ffa_rx_acquire(dst_ctx)
        if not ret:
            assert rx_buf is not None
            if rx_size - FFA_PART_MSG_RXTX_1_2.size < src_msg.msg_size:
                ret = abi.FFA_RET_NO_MEMORY
                self.ffa_rx_release(dst_ctx)
            else:
                write_msg_1_2(rx_buf, src_buf, src_msg)
        if ret:  # out_unlock:
            self.printk(f"msg_send2 to {dst_id:#x} failed: {ret}")
        else:
            self.ffa_raise_rx_buffer_full(dst_d)
        return ret

    def ffa_handle_msg_send2(self, d: Domain, regs: Regs) -> int:
        src_ctx = d.tee
        assert src_ctx is not None
        ret, tx_buf, tx_size = self.ffa_tx_acquire(src_ctx)
        if ret != abi.FFA_RET_OK:
            return ret
        assert tx_buf is not None
        # One copy of the header (read as a v1.2 header: for a v1.1 sender its UUID words are
        # payload bytes), then barrier(): validation and use both read the copy (c447b7308b).
        src_msg = FfaPartMsgRxtx.copy(tx_buf, FFA_PART_MSG_RXTX_1_2.size)
        src_id = src_msg.send_recv_id >> 16
        dst_id = src_msg.send_recv_id & 0xFFFF
        vm_id = ffa_get_vm_id(d)
        if src_id != vm_id or dst_id == vm_id:
            self.printk(f"msg_send2 invalid src/dst src {src_id:#x} dst {dst_id:#x}")
            ret = abi.FFA_RET_INVALID_PARAMETERS
        elif src_ctx.guest_vers.read() < abi.FFA_VERSION_1_2:
            if src_msg.msg_offset < FFA_PART_MSG_RXTX_1_1.size:
                ret = abi.FFA_RET_INVALID_PARAMETERS
            src_msg.uuid0 = src_msg.uuid1 = 0  # a v1.1 sender has no UUID: nil
        elif src_msg.msg_offset < FFA_PART_MSG_RXTX_1_2.size:
            ret = abi.FFA_RET_INVALID_PARAMETERS
        # The message must fit in the source buffer.
        if not ret and (
            src_msg.msg_size == 0
            or src_msg.msg_offset > tx_size
            or src_msg.msg_size > tx_size - src_msg.msg_offset
        ):
            ret = abi.FFA_RET_INVALID_PARAMETERS
        if ret:
            pass
        elif FFA_ID_IS_SECURE(dst_id):
            if not self.ffa_fw_supports_fid(abi.FFA_MSG_SEND2):
                ret = abi.FFA_RET_NOT_SUPPORTED
            elif not self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE):
                # The SPMC reads the VM's TX: it is mapped there only with RX_ACQUIRE.
                ret = abi.FFA_RET_NOT_SUPPORTED
            else:
                ret = self.ffa_simple_call(abi.FFA_MSG_SEND2, vm_id << 16, 0, 0, 0)
        elif self.CONFIG_FFA_VM_TO_VM:
            ret = self.ffa_msg_send2_vm(d, dst_id, tx_buf, src_msg)
        else:
            self.printk(f"msg_send2 to VM disabled (dst {dst_id:#x})")
            ret = abi.FFA_RET_INVALID_PARAMETERS
        self.ffa_tx_release(src_ctx)  # out:
        return ret

    def ffa_handle_run(self, d: Domain, regs: Regs, fid: int) -> Regs:
        if not self.ffa_fw_supports_fid(fid):
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        dst = regs[1] & abi.MASK32
        # Target in [31:16], vCPU in [15:0]; FFA_RUN to VMs is not supported.
        if not FFA_ID_IS_SECURE(dst >> 16):
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        return self.ffa_finish_direct_req_run(abi.regs(fid, dst))
