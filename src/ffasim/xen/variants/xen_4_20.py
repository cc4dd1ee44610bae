"""Variant ``xen-4.20``: Xen's FF-A mediator as released in RELEASE-4.20.0 (tee/ffa at
39c45caef2; 4.20.1 to 4.20.4 did not change it).

4.20.0 is 4.21.0 without 36dd9a7a42 (partinfo rework), 09a201605f, 3935c70568, 98af565b1e and
911b305e7b (VM-to-VM: there is no ``CONFIG_FFA_VM_TO_VM`` yet, so a system built with
``vm_to_vm=True`` runs this mediator without it), so the class derives from ``xen-4.21`` and
undoes those. Its defects, each found by a command of the README:

- FFA_MSG_SEND2 reads the header from the guest's TX in place (no copy), each field as it is
  used: ``send_recv_id`` twice, ``msg_offset`` twice (a double fetch of guest memory), and with
  no TX mapped it dereferences NULL (a hypervisor crash; fixed by 3528248b8c);
- RX_ACQUIRE is never probed: the VM's buffers are never registered with the SPMC, so SEND2 to
  an SP fails at the SPMC;
- FFA_RXTX_MAP/UNMAP take no lock; FFA_VERSION rewrites the version at any time, without a lock
  (data races, as in 4.21);
- ``ffa_rxtx_destroy`` frees Xen's pages before FFA_RXTX_UNMAP, and FFA_RX_RELEASE follows a
  failed boot-time FFA_PARTITION_INFO_GET (as in 4.21).
"""

from __future__ import annotations

from ... import abi
from ...machine import Machine, SmcConduit, spin_lock, spin_trylock, spin_unlock
from ...machine.xmalloc import xmalloc
from ..ffa_msg import FFA_PART_MSG_RXTX_1_1
from ..ffa_private import (
    DOMID_FIRST_RESERVED,
    ENODEV,
    ENOMEM,
    ERANGE,
    FFA_ID_IS_SECURE,
    FFA_PAGE_SIZE,
    FFA_PARTITION_INFO_1_0,
    FFA_PARTITION_INFO_1_1,
    Domain,
    FfaCtx,
    MappedBuf,
    Regs,
    ffa_get_ret_code,
    ffa_get_vm_id,
    ffa_set_regs,
    ffa_set_regs_error,
    ffa_set_regs_success,
    ffa_uuid_set,
)
from ..ffa_rxtx import xenheap_buf
from .xen_4_21 import FW_ABI_NEEDED_4_21, LockedGuestVers, Xen421Ffa


class Xen420Ffa(Xen421Ffa):
    """RELEASE-4.20.0 (see the module docstring)."""

    variant = "xen-4.20"
    ffa_fw_abi_needed = FW_ABI_NEEDED_4_21  # the same list

    def __init__(self, machine: Machine, conduit: SmcConduit, vm_to_vm: bool = False) -> None:
        # CONFIG_FFA_VM_TO_VM came with 09a201605f (4.21): there is no VM-to-VM here.
        super().__init__(machine, conduit, False)

    # -- ffa.c ------------------------------------------------------------------------------------
    def handle_version(self, d: Domain, regs: Regs) -> Regs:
        """Before 09a201605f: the guest's version is set with no lock at all."""
        ctx = d.tee
        assert ctx is not None
        vers = regs[1] & abi.MASK32
        if abi.version_major(vers) == abi.version_major(self.FFA_MY_VERSION):
            if abi.version_minor(vers) > abi.version_minor(self.FFA_MY_VERSION):
                ctx.guest_vers.set(self.FFA_MY_VERSION)
            else:
                ctx.guest_vers.set(vers)
        return ffa_set_regs(self.FFA_MY_VERSION)

    def ffa_domain_init(self, d: Domain) -> int:
        """Before 09a201605f: no firmware means no FF-A; the context has no list membership
        nor cached ID (the model still fills them: nothing reads them here)."""
        if not self.ffa_fw_version:
            return -ENODEV
        if d.domain_id >= DOMID_FIRST_RESERVED:
            return -ERANGE
        if not xmalloc(self.machine, "xzalloc", "ffa_domain_init"):
            return -ENOMEM
        ctx = FfaCtx(self.machine, d)
        ctx.guest_vers = LockedGuestVers(  # type: ignore[assignment]
            self.machine, f"d{d.domain_id}.ffa.guest_vers", 0, ctx.lock
        )
        d.tee = ctx
        ctx.ffa_id = ffa_get_vm_id(d)
        ctx.num_vcpus = d.max_vcpus
        ret = self.ffa_partinfo_domain_init(d)
        if ret:
            return ret
        return self.ffa_notif_domain_init(d)

    # -- ffa_partinfo.c ---------------------------------------------------------------------------
    def ffa_handle_partition_info_get(self, d: Domain, regs: Regs) -> Regs:
        """Before 36dd9a7a42: the count flag only for a v1.1 guest (any other version gets
        INVALID_PARAMETERS); the SPs are copied from ``ffa_rx`` whole (``dst_size`` bytes of
        each, no bound on the entry size), guarded by a size check made before non-secure
        entries are dropped."""
        ctx = d.tee
        assert ctx is not None
        flags = regs[5] & abi.MASK32
        uuid = ffa_uuid_set(regs[1], regs[2], regs[3], regs[4])
        sp_count = 0
        if ctx.guest_vers.read() == abi.FFA_VERSION_1_0:
            dst_size = FFA_PARTITION_INFO_1_0.size
        else:
            dst_size = FFA_PARTITION_INFO_1_1.size
        w = abi.uuid_to_regs32(uuid)
        if (
            flags == abi.FFA_PARTITION_INFO_GET_COUNT_FLAG
            and ctx.guest_vers.read() == abi.FFA_VERSION_1_1
        ):
            ret = abi.FFA_RET_OK
            if self.ffa_fw_supports_fid(abi.FFA_PARTITION_INFO_GET):
                ret, sp_count, _ = self.ffa_partition_info_get(uuid, flags)
        elif flags:
            ret = abi.FFA_RET_INVALID_PARAMETERS
        elif not self.ffa_fw_supports_fid(abi.FFA_PARTITION_INFO_GET):
            ret = abi.FFA_RET_OK  # an empty list
        else:
            ret, _, _ = self.ffa_rx_acquire(ctx)
            if ret == abi.FFA_RET_OK:
                rx = ctx.rx.get()  # read with no lock held
                dst_buf = rx or MappedBuf.null(self.machine, 0, "ctx->rx")
                if self.ffa_rx.value is None:
                    ret = abi.FFA_RET_DENIED
                else:
                    spin_lock(self.ffa_rx_buffer_lock)
                    resp = self.smc(abi.FFA_PARTITION_INFO_GET, *w, 0)
                    ret = ffa_get_ret_code(resp)
                    if not ret:
                        sp_count = resp[2] & abi.MASK32
                        src_size = resp[3] & abi.MASK32
                        # The SPMC filled Xen's RX: give it back once copied.
                        if src_size < FFA_PARTITION_INFO_1_0.size:
                            ret = abi.FFA_RET_NOT_SUPPORTED
                        elif ctx.page_count * FFA_PAGE_SIZE < sp_count * dst_size:
                            ret = abi.FFA_RET_NO_MEMORY
                        else:
                            frame = self.ffa_rx.get()
                            assert frame is not None
                            src = xenheap_buf(self.machine, frame, "ffa_rx")
                            dst = 0
                            for n in range(sp_count):
                                if FFA_ID_IS_SECURE(src.u16(n * src_size)):
                                    dst_buf.store(dst, src.load(n * src_size, dst_size))
                                    dst += dst_size
                                else:
                                    sp_count -= 1
                        self.ffa_hyp_rx_release()  # out_rx_hyp_release:
                    spin_unlock(self.ffa_rx_buffer_lock)  # out_rx_hyp_unlock:
                if ret != abi.FFA_RET_OK:  # out_rx_release:
                    self.ffa_rx_release(ctx)
        if ret:  # out:
            return ffa_set_regs_error(ret)
        return ffa_set_regs_success(sp_count, dst_size)

    def ffa_partinfo_init(self) -> bool:
        """Before 36dd9a7a42: any count below UINT16_MAX is accepted (not yet FFA_MAX_NUM_SP)."""
        if (
            not self.ffa_fw_supports_fid(abi.FFA_PARTITION_INFO_GET)
            or not self.ffa_fw_supports_fid(abi.FFA_MSG_SEND_DIRECT_REQ_32)
            or self.ffa_rx.value is None
            or self.ffa_tx.value is None
        ):
            return False
        ret = False
        e, count, fpi_size = self.ffa_partition_info_get(abi.NIL_UUID, 0)
        if e:
            self.printk(f"Failed to get list of SPs: {e}")
        elif count >= 0xFFFF:
            self.printk(f"Impossible number of SPs: {count}")
        else:
            ret = self.init_subscribers(
                xenheap_buf(self.machine, self.ffa_rx.value, "ffa_rx"), count, fpi_size
            )
        self.ffa_hyp_rx_release()  # out:
        return ret

    # -- ffa_msg.c --------------------------------------------------------------------------------
    def ffa_handle_msg_send2(self, d: Domain, regs: Regs) -> int:
        """Before 98af565b1e: the header is read in place from the guest's TX, each field where
        it is used (no copy); SEND2 goes to SPs only; the firmware is checked first; a TX
        that was never mapped is a NULL dereference (3528248b8c added the check)."""
        src_ctx = d.tee
        assert src_ctx is not None
        if not self.ffa_fw_supports_fid(abi.FFA_MSG_SEND2):
            return abi.FFA_RET_NOT_SUPPORTED
        if not spin_trylock(src_ctx.tx_lock):
            return abi.FFA_RET_BUSY
        tx_size = src_ctx.page_count * FFA_PAGE_SIZE
        src_msg = src_ctx.tx.get() or MappedBuf.null(self.machine, tx_size, "ctx->tx")
        src_id = src_msg.u32(12) >> 16  # src_msg->send_recv_id
        dst_id = src_msg.u32(12) & 0xFFFF  # src_msg->send_recv_id, again
        if src_id != ffa_get_vm_id(d) or not FFA_ID_IS_SECURE(dst_id):
            ret = abi.FFA_RET_INVALID_PARAMETERS
        elif tx_size < (src_msg.u32(8) + src_msg.u32(16)) & abi.MASK32 or (
            src_msg.u32(8) < FFA_PART_MSG_RXTX_1_1.size
        ):
            ret = abi.FFA_RET_INVALID_PARAMETERS  # msg_offset + msg_size wraps at 2^32
        else:
            ret = self.ffa_simple_call(abi.FFA_MSG_SEND2, ffa_get_vm_id(d) << 16, 0, 0, 0)
        spin_unlock(src_ctx.tx_lock)  # out_unlock_tx:
        return ret

    # -- ffa_notif.c ------------------------------------------------------------------------------
    def ffa_handle_notification_bind(self, d: Domain, regs: Regs) -> int:
        """Before 09a201605f: forwarded whoever the sender is (the SPMC checks it)."""
        src_dst = regs[1] & abi.MASK32
        flags = regs[2] & abi.MASK32
        if not self.fw_notif_enabled:  # notif_enabled
            return abi.FFA_RET_NOT_SUPPORTED
        if (src_dst & 0xFFFF) != ffa_get_vm_id(d):
            return abi.FFA_RET_INVALID_PARAMETERS
        if flags:
            return abi.FFA_RET_DENIED  # only global notifications
        return self.ffa_simple_call(
            abi.FFA_NOTIFICATION_BIND, src_dst, flags, regs[3] & abi.MASK32, regs[4] & abi.MASK32
        )

    def ffa_handle_notification_unbind(self, d: Domain, regs: Regs) -> int:
        """Before 09a201605f: forwarded whoever the sender is."""
        src_dst = regs[1] & abi.MASK32
        if not self.fw_notif_enabled:
            return abi.FFA_RET_NOT_SUPPORTED
        if (src_dst & 0xFFFF) != ffa_get_vm_id(d):
            return abi.FFA_RET_INVALID_PARAMETERS
        return self.ffa_simple_call(
            abi.FFA_NOTIFICATION_UNBIND, src_dst, 0, regs[3] & abi.MASK32, regs[4] & abi.MASK32
        )

    def ffa_handle_notification_set(self, d: Domain, regs: Regs) -> int:
        """Before 911b305e7b: forwarded whoever the receiver is (the SPMC checks it), so SET to
        an SP works (4.21 broke it by testing the sender's halfword)."""
        src_dst = regs[1] & abi.MASK32
        if not self.fw_notif_enabled:
            return abi.FFA_RET_NOT_SUPPORTED
        if (src_dst >> 16) != ffa_get_vm_id(d):
            return abi.FFA_RET_INVALID_PARAMETERS
        return self.ffa_simple_call(
            abi.FFA_NOTIFICATION_SET,
            src_dst,
            regs[2] & abi.MASK32,
            regs[3] & abi.MASK32,
            regs[4] & abi.MASK32,
        )
