"""Variant ``xen-4.22``: Xen's FF-A mediator as released in RELEASE-4.22.0 (tee/ffa at
b89ecb4dd4; no 4.22 point release had changed it when this was written).

4.22.0 is upstream HEAD (c447b7308b) without that commit, so this overrides one function:

- ``ffa_handle_msg_send2`` before c447b7308b ("Harden SEND2 against invented loads"): no
  ``barrier()`` after the copy of the sender's header, so nothing stops the compiler from
  dropping the local copy and loading the header's fields from the guest's TX buffer again
  where they are used, after they were validated (the audit of Xen 4.21.1 that the commit
  cites). The model takes that compilation: the uses of ``msg_offset``, ``msg_size`` and
  ``send_recv_id`` in ``ffa_msg_send2_vm`` read the TX again (:class:`ReloadedPartMsg`). The
  double-fetch monitor reports the re-read; a sibling vCPU rewriting the header in between
  turns it into an out-of-bounds read of the TX or write of the receiver's RX.

Its other defects are upstream's (``ffasim/xen/`` keeps them; ``reference`` fixes them): seed
defects 2 (unreachable) and 4, MEM_SHARE answering SUCCESS with handle 0 for a fragment longer
than the TX buffer, a FRAG_RX offset returned as an error code, FFA_VERSION bit 31 unchecked, a
queued VM_DESTROYED retry without a domain reference, GET_REGS not paging past five VMs.
"""

from __future__ import annotations

from ... import abi
from ..ffa import Ffa
from ..ffa_msg import FFA_PART_MSG_RXTX_1_1, FFA_PART_MSG_RXTX_1_2, FfaPartMsgRxtx
from ..ffa_private import FFA_ID_IS_SECURE, Domain, MappedBuf, Regs, ffa_get_vm_id


class ReloadedPartMsg(FfaPartMsgRxtx):
    """A SEND2 header whose copy the compiler did not keep: ``msg_offset``, ``msg_size`` and
    ``send_recv_id`` are loaded from the sender's TX at each use (the fields Xen never writes
    after the copy; the UUID words, which a v1.1 sender has zeroed, stay in the copy)."""

    __slots__ = ("tx",)

    def __init__(self, tx: MappedBuf, copy: FfaPartMsgRxtx) -> None:
        self.tx = tx
        self.flags = copy.flags
        self.uuid0 = copy.uuid0
        self.uuid1 = copy.uuid1

    def __getattribute__(self, name: str) -> int:
        if name == "msg_offset":
            return object.__getattribute__(self, "tx").u32(8)
        if name == "send_recv_id":
            return object.__getattribute__(self, "tx").u32(12)
        if name == "msg_size":
            return object.__getattribute__(self, "tx").u32(16)
        return object.__getattribute__(self, name)


class Xen422Ffa(Ffa):
    """RELEASE-4.22.0 (see the module docstring)."""

    variant = "xen-4.22"

    def ffa_handle_msg_send2(self, d: Domain, regs: Regs) -> int:
        """Before c447b7308b: no ``barrier()`` after the header copy, so the header's fields
        may be loaded from the TX again after validation (modelled: they are, in
        ``ffa_msg_send2_vm``)."""
        src_ctx = d.tee
        assert src_ctx is not None
        ret, tx_buf, tx_size = self.ffa_tx_acquire(src_ctx)
        if ret != abi.FFA_RET_OK:
            return ret
        assert tx_buf is not None
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
            src_msg.uuid0 = src_msg.uuid1 = 0
        elif src_msg.msg_offset < FFA_PART_MSG_RXTX_1_2.size:
            ret = abi.FFA_RET_INVALID_PARAMETERS
        if not ret and (
            src_msg.msg_size == 0
            or src_msg.msg_offset > tx_size
            or src_msg.msg_size > tx_size - src_msg.msg_offset
        ):
            ret = abi.FFA_RET_INVALID_PARAMETERS
        if ret:
            pass
        elif FFA_ID_IS_SECURE(dst_id):
            if not self.ffa_fw_supports_fid(abi.FFA_MSG_SEND2) or not self.ffa_fw_supports_fid(
                abi.FFA_RX_ACQUIRE
            ):
                ret = abi.FFA_RET_NOT_SUPPORTED
            else:
                ret = self.ffa_simple_call(abi.FFA_MSG_SEND2, vm_id << 16, 0, 0, 0)
        elif self.CONFIG_FFA_VM_TO_VM:
            # Validated; from here on the header's fields come from the TX again.
            ret = self.ffa_msg_send2_vm(d, dst_id, tx_buf, ReloadedPartMsg(tx_buf, src_msg))
        else:
            self.printk(f"msg_send2 to VM disabled (dst {dst_id:#x})")
            ret = abi.FFA_RET_INVALID_PARAMETERS
        self.ffa_tx_release(src_ctx)
        return ret
