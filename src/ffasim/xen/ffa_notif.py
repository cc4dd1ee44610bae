"""Notifications: BIND/UNBIND/SET/GET/INFO_GET, the SRI and its tasklet. Mirrors ffa_notif.c.

Only global notifications between a VM and SPs are forwarded (per-vCPU ones are DENIED). The SPMC
signals pending notifications with the Schedule Receiver Interrupt; its handler only schedules a
tasklet, which asks the SPMC (FFA_NOTIFICATION_INFO_GET_64) which VMs have some pending, marks
them ``secure_pending`` and injects vIRQ 8 into their first online vCPU. With VM-to-VM, a message
delivered by SEND2 raises "RX buffer full" on the receiver the same way.

Locks: none; the per-VM flags are atomics (``ACCESS_ONCE``/test-and-set in Xen).

Not modelled: the SGI/PPI set-up (``request_irq``); secondary CPUs.
"""

from __future__ import annotations

from .. import abi
from ..machine import ASSERT, Machine, Shared, SmcConduit
from .ffa_private import (
    ENOMEM,
    FFA_ID_IS_SECURE,
    GUEST_FFA_NOTIF_PEND_INTR_ID,
    Domain,
    Regs,
    ffa_get_ret_code,
    ffa_get_vm_id,
    ffa_set_regs,
    ffa_set_regs_error,
)
from .ffa_shm import FfaShm


class FfaNotif(FfaShm):
    """ffa_notif.c: the functions of that file, as methods of the mediator."""

    # tasklet_schedule() from the SRI handler on any CPU, cleared by the tasklet (Xen's tasklet
    # lock, which the model does not need: declared accesses order them for the checker).
    notif_sri_tasklet_scheduled = Shared(False)

    def __init__(self, machine: Machine, conduit: SmcConduit, vm_to_vm: bool = False) -> None:
        super().__init__(machine, conduit, vm_to_vm)
        self.fw_notif_enabled = False  # __ro_after_init
        self.notif_sri_irq = 0
        self.notif_sri_tasklet_scheduled = False

    # -- guest calls ------------------------------------------------------------------------------
    def ffa_handle_notification_bind(self, d: Domain, regs: Regs) -> int:
        src_dst = regs[1] & abi.MASK32
        flags = regs[2] & abi.MASK32
        bitmap_lo = regs[3] & abi.MASK32
        bitmap_hi = regs[4] & abi.MASK32
        if (src_dst & 0xFFFF) != ffa_get_vm_id(d):
            return abi.FFA_RET_INVALID_PARAMETERS
        if flags:
            return abi.FFA_RET_DENIED  # only global notifications
        if FFA_ID_IS_SECURE(src_dst >> 16) and self.fw_notif_enabled:
            return self.ffa_simple_call(
                abi.FFA_NOTIFICATION_BIND, src_dst, flags, bitmap_lo, bitmap_hi
            )
        return abi.FFA_RET_NOT_SUPPORTED

    def ffa_handle_notification_unbind(self, d: Domain, regs: Regs) -> int:
        src_dst = regs[1] & abi.MASK32
        bitmap_lo = regs[3] & abi.MASK32
        bitmap_hi = regs[4] & abi.MASK32
        if (src_dst & 0xFFFF) != ffa_get_vm_id(d):
            return abi.FFA_RET_INVALID_PARAMETERS
        if FFA_ID_IS_SECURE(src_dst >> 16) and self.fw_notif_enabled:
            return self.ffa_simple_call(
                abi.FFA_NOTIFICATION_UNBIND, src_dst, 0, bitmap_lo, bitmap_hi
            )
        return abi.FFA_RET_NOT_SUPPORTED

    def ffa_handle_notification_info_get(self, d: Domain, regs: Regs) -> Regs:
        ctx = d.tee
        assert ctx is not None
        if not self.CONFIG_FFA_VM_TO_VM and not self.fw_notif_enabled:
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        pending = ctx.secure_pending.test_and_clear()
        if self.CONFIG_FFA_VM_TO_VM:
            pending = ctx.vm_pending.test_and_clear() or pending
        if pending:
            # One list: this VM's ID, no vCPU IDs (global notifications).
            return ffa_set_regs(
                abi.FFA_SUCCESS_64,
                0,
                1 << abi.FFA_NOTIF_INFO_GET_ID_COUNT_SHIFT,
                ffa_get_vm_id(d),
            )
        return ffa_set_regs_error(abi.FFA_RET_NO_DATA)

    def ffa_handle_notification_get(self, d: Domain, regs: Regs) -> Regs:
        ctx = d.tee
        assert ctx is not None
        recv = regs[1] & abi.MASK32
        flags = regs[2] & abi.MASK32
        w2 = w3 = w6 = w7 = 0
        if not self.CONFIG_FFA_VM_TO_VM and not self.fw_notif_enabled:
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        if (recv & 0xFFFF) != ffa_get_vm_id(d):
            return ffa_set_regs_error(abi.FFA_RET_INVALID_PARAMETERS)
        secure_flags = flags & (abi.FFA_NOTIF_FLAG_BITMAP_SP | abi.FFA_NOTIF_FLAG_BITMAP_SPM)
        if self.fw_notif_enabled and secure_flags:
            # Both secure bitmaps read: the secure side has nothing pending any more.
            if secure_flags == (abi.FFA_NOTIF_FLAG_BITMAP_SP | abi.FFA_NOTIF_FLAG_BITMAP_SPM):
                ctx.secure_pending.set(0)
            resp = self.smc(abi.FFA_NOTIFICATION_GET, recv, secure_flags)
            e = ffa_get_ret_code(resp)
            if e:
                return ffa_set_regs_error(e)
            if flags & abi.FFA_NOTIF_FLAG_BITMAP_SP:
                w2 = resp[2] & abi.MASK32
                w3 = resp[3] & abi.MASK32
            if flags & abi.FFA_NOTIF_FLAG_BITMAP_SPM:
                w6 = resp[6] & abi.MASK32
        if (
            self.CONFIG_FFA_VM_TO_VM
            and flags & abi.FFA_NOTIF_FLAG_BITMAP_HYP
            and ctx.buff_full_pending.test_and_clear()
        ):
            ctx.vm_pending.set(0)
            w7 = abi.FFA_NOTIF_RX_BUFFER_FULL
        return ffa_set_regs(abi.FFA_SUCCESS_32, 0, w2, w3, 0, 0, w6, w7)

    def ffa_handle_notification_set(self, d: Domain, regs: Regs) -> int:
        src_dst = regs[1] & abi.MASK32
        flags = regs[2] & abi.MASK32
        bitmap_lo = regs[3] & abi.MASK32
        bitmap_hi = regs[4] & abi.MASK32
        if (src_dst >> 16) != ffa_get_vm_id(d):
            return abi.FFA_RET_INVALID_PARAMETERS
        if FFA_ID_IS_SECURE(src_dst & 0xFFFF) and self.fw_notif_enabled:
            return self.ffa_simple_call(
                abi.FFA_NOTIFICATION_SET, src_dst, flags, bitmap_lo, bitmap_hi
            )
        return abi.FFA_RET_NOT_SUPPORTED

    def ffa_raise_rx_buffer_full(self, d: Domain) -> None:
        """Tell ``d`` that a message landed in its RX: vIRQ 8 on vCPU 0 unless already told."""
        ctx = d.tee
        if ctx is None:
            return
        ctx.buff_full_pending.set(1)
        if not ctx.vm_pending.test_and_set():
            self.vgic_inject_irq(d, 0, GUEST_FFA_NOTIF_PEND_INTR_ID)

    # -- the SRI ----------------------------------------------------------------------------------
    @staticmethod
    def get_id_from_resp(resp: Regs, n: int) -> int:
        """The ``n``-th 16-bit ID packed in x3..x7 of an INFO_GET reply."""
        ids_per_reg = 4 if abi.is_64bit_fid(resp[0]) else 2
        reg_idx = n // ids_per_reg + 3
        if reg_idx > 7:
            # Only an SPMC listing more IDs than x3..x7 hold gets here: a debug build panics.
            ASSERT(False, "0")  # get_id_from_resp: "can't happen"
            return 0
        return (resp[reg_idx] >> ((n % ids_per_reg) * 16)) & 0xFFFF

    def notif_vm_pend_intr(self, vm_id: int) -> None:
        """Mark ``vm_id`` secure-pending and inject vIRQ 8 into its first online vCPU."""
        if not vm_id:
            return  # pending for Xen itself: not supported
        d = self.ffa_rcu_lock_domain_by_vm_id(vm_id)
        if d is None:
            return  # destroyed since INFO_GET: harmless
        ctx = d.tee
        if ctx is None:
            return
        ctx.secure_pending.set(1)
        for v in d.vcpu:
            if v.online:
                self.vgic_inject_irq(d, v.vcpu_id, GUEST_FFA_NOTIF_PEND_INTR_ID)
                break

    def notif_sri_action(self) -> None:
        """The tasklet: drain FFA_NOTIFICATION_INFO_GET_64 while the SPMC says there is more."""
        while True:
            resp = self.smc(abi.FFA_NOTIFICATION_INFO_GET_64)
            res = ffa_get_ret_code(resp)
            if res:
                if res != abi.FFA_RET_NO_DATA:
                    self.printk(f"notification info get failed: error {res}")
                return
            ids_count = resp[2] >> abi.FFA_NOTIF_INFO_GET_ID_LIST_SHIFT
            list_count = (
                resp[2] >> abi.FFA_NOTIF_INFO_GET_ID_COUNT_SHIFT
            ) & abi.FFA_NOTIF_INFO_GET_ID_COUNT_MASK
            id_pos = 0
            for n in range(list_count):
                count = ((ids_count >> (2 * n)) & 0x3) + 1
                self.notif_vm_pend_intr(self.get_id_from_resp(resp, id_pos))
                id_pos += count
            if not resp[2] & abi.FFA_NOTIF_INFO_GET_MORE_FLAG:
                return

    def notif_irq_handler(self) -> None:
        """The SRI handler: schedule the tasklet (run later by ``System.run_tasklets``)."""
        self.notif_sri_tasklet_scheduled = True

    def ffa_notification_bitmap_create(self, vm_id: int, vcpu_count: int) -> int:
        return self.ffa_simple_call(abi.FFA_NOTIFICATION_BITMAP_CREATE, vm_id, vcpu_count, 0, 0)

    def ffa_notification_bitmap_destroy(self, vm_id: int) -> int:
        return self.ffa_simple_call(abi.FFA_NOTIFICATION_BITMAP_DESTROY, vm_id, 0, 0, 0)

    def ffa_notif_init(self) -> None:
        """Enable firmware notifications if the SPMC has every ABI needed and an SRI."""
        if not (
            self.ffa_fw_supports_fid(abi.FFA_NOTIFICATION_BITMAP_CREATE)
            and self.ffa_fw_supports_fid(abi.FFA_NOTIFICATION_BITMAP_DESTROY)
            and self.ffa_fw_supports_fid(abi.FFA_NOTIFICATION_GET)
            and self.ffa_fw_supports_fid(abi.FFA_NOTIFICATION_INFO_GET_64)
        ):
            return
        resp = self.smc(abi.FFA_FEATURES, abi.FFA_FEAT_SCHEDULE_RECV_INTR)
        if resp[0] != abi.FFA_SUCCESS_32:
            return
        self.notif_sri_irq = resp[2] & abi.MASK32
        # request_irq(): the SPMC raises the SRI through its on_sri hook (set by the system).
        self.fw_notif_enabled = True

    def ffa_notif_domain_init(self, d: Domain) -> int:
        if self.fw_notif_enabled:
            res = self.ffa_notification_bitmap_create(ffa_get_vm_id(d), d.max_vcpus)
            if res:
                return -ENOMEM
        return 0

    def ffa_notif_domain_destroy(self, d: Domain) -> None:
        # Called even if create failed: the SPMC answers DENIED, which is ignored.
        if self.fw_notif_enabled:
            self.ffa_notification_bitmap_destroy(ffa_get_vm_id(d))
