"""The mediator's entry points: probe, dispatcher, version negotiation, FFA_FEATURES, domain
init/teardown and the teardown timer. Mirrors ffa.c (upstream HEAD, c447b7308b).

References: FF-A DEN0077A v1.2; Xen ``xen/arch/arm/tee/ffa.c``. Guests see FF-A v1.2 (the
``reference`` variant; ``seed-v1`` answers 1.1). Every guest must call FFA_VERSION before any
other FF-A function (NOT_SUPPORTED otherwise); its version is final at its first other call.

Locks owned here: ``guest_vers_lock`` (negotiation; inside it, the ctx-list rwlock for writing
when VM-to-VM publishes the VM), ``ffa_ctx_list_rwlock``, ``ffa_teardown_lock`` (the list of
domains whose teardown must be retried; taken alone).

Upstream defects kept here (``reference`` fixes them): a domain queued for a teardown retry of
VM_DESTROYED alone holds no domain reference (the ctx can be freed while on the list: a use
after free when the timer fires); FFA_VERSION's bit 31 (MBZ) is not checked.

Unsupported interfaces answer FFA_ERROR(NOT_SUPPORTED): MSG_POLL, MSG_WAIT, MSG_YIELD, MSG_SEND,
MEM_DONATE, MEM_LEND, MEM_RETRIEVE_*, MEM_RELINQUISH, MEM_FRAG_*, NOTIFICATION_BITMAP_*,
RX_ACQUIRE, SPM_ID_GET, CONSOLE_LOG. A 32-bit domain's SMC64 calls are NOT_SUPPORTED
(f42bacb20e). Not modelled: the ``tee=ffa`` command line, secondary-CPU bring-up.
"""

from __future__ import annotations

from .. import abi
from ..machine import (
    Guarded,
    Machine,
    Shared,
    SmcConduit,
    spin_lock,
    spin_unlock,
    write_lock,
    write_unlock,
)
from ..machine.xmalloc import xmalloc
from .ffa_msg import FfaMsg
from .ffa_private import (
    DOMID_FIRST_RESERVED,
    ENODEV,
    ENOMEM,
    ERANGE,
    FFA_ABI_BITNUM,
    FFA_CTX_TEARDOWN_DELAY,
    FFA_MAX_RXTX_PAGE_COUNT,
    FFA_MIN_SPMC_VERSION,
    GUEST_FFA_NOTIF_PEND_INTR_ID,
    GUEST_FFA_SCHEDULE_RECV_INTR_ID,
    Domain,
    FfaCtx,
    Regs,
    ffa_get_vm_id,
    ffa_set_regs,
    ffa_set_regs_error,
    ffa_set_regs_success,
    is_64bit_domain,
)

# ABIs Xen uses from the firmware (ffa_fw_abi_needed[]), HEAD's list: RX_ACQUIRE probed,
# MEM_SHARE_32 no longer (4992308e97).
FFA_FW_ABI_NEEDED: tuple[int, ...] = (
    abi.FFA_VERSION,
    abi.FFA_FEATURES,
    abi.FFA_NOTIFICATION_BITMAP_CREATE,
    abi.FFA_NOTIFICATION_BITMAP_DESTROY,
    abi.FFA_PARTITION_INFO_GET,
    abi.FFA_NOTIFICATION_INFO_GET_64,
    abi.FFA_NOTIFICATION_GET,
    abi.FFA_RX_ACQUIRE,
    abi.FFA_RX_RELEASE,
    abi.FFA_RXTX_MAP_64,
    abi.FFA_RXTX_UNMAP,
    abi.FFA_MEM_SHARE_64,
    abi.FFA_MEM_RECLAIM,
    abi.FFA_MSG_SEND_DIRECT_REQ_32,
    abi.FFA_MSG_SEND_DIRECT_REQ_64,
    abi.FFA_MSG_SEND2,
    abi.FFA_MSG_SEND_DIRECT_REQ2,
    abi.FFA_RUN,
)

_UNSUPPORTED_AT_PHYS = frozenset(
    {abi.FFA_NOTIFICATION_BITMAP_CREATE, abi.FFA_NOTIFICATION_BITMAP_DESTROY, abi.FFA_RX_ACQUIRE}
)
_FEATURES_ALWAYS = frozenset(
    {
        abi.FFA_ERROR,
        abi.FFA_VERSION,
        abi.FFA_INTERRUPT,
        abi.FFA_SUCCESS_32,
        abi.FFA_SUCCESS_64,
        abi.FFA_FEATURES,
        abi.FFA_ID_GET,
        abi.FFA_RX_RELEASE,
        abi.FFA_RXTX_UNMAP,
        abi.FFA_MEM_RECLAIM,
        abi.FFA_PARTITION_INFO_GET,
        abi.FFA_NOTIFICATION_BIND,
        abi.FFA_NOTIFICATION_UNBIND,
        abi.FFA_NOTIFICATION_GET,
        abi.FFA_NOTIFICATION_SET,
        abi.FFA_NOTIFICATION_INFO_GET_32,
        abi.FFA_NOTIFICATION_INFO_GET_64,
    }
)


class Ffa(FfaMsg):
    """The FF-A mediator (ffa.c on top of the other files), upstream HEAD exactly: the
    ``head`` variant, and the base every other variant overrides."""

    ffa_fw_abi_needed = FFA_FW_ABI_NEEDED

    # The teardown timer's expiry (set_timer() under ffa_teardown_lock, read by the timer) and
    # virtual time: shared by the toolstack and the timer context.
    ffa_teardown_timer: Shared[float | None] = Shared(None)
    now = Shared(0.0)

    def __init__(self, machine: Machine, conduit: SmcConduit, vm_to_vm: bool = False) -> None:
        super().__init__(machine, conduit, vm_to_vm)
        m = self.machine
        self.ffa_teardown_lock = m.spinlock("ffa_teardown_lock")
        self.ffa_teardown_head: Guarded[list[FfaCtx]] = Guarded(
            m, "ffa_teardown_head", [], self.ffa_teardown_lock
        )
        self.probed = False

    # -- firmware queries (used by the probe below) ---------------------------------------------
    def ffa_get_version(self) -> tuple[bool, int]:
        resp = self.smc(abi.FFA_VERSION, self.FFA_MY_VERSION)
        ret = abi.to_s32(resp[0])
        if ret == abi.FFA_RET_NOT_SUPPORTED:
            return False, 0
        return True, resp[0] & abi.MASK32

    def ffa_abi_supported(self, fid: int) -> bool:
        return not self.ffa_simple_call(abi.FFA_FEATURES, fid, 0, 0, 0)

    # -- version negotiation ----------------------------------------------------------------------
    def ffa_negotiate_version(self, d: Domain, ctx: FfaCtx, regs: Regs) -> Regs | None:
        """Handle a call made before the guest's version is final: the registers to answer
        with, or None to go on and handle the call (which makes the version final)."""
        fid = regs[0] & abi.MASK32
        in_vers = regs[1] & abi.MASK32
        out_vers = self.FFA_MY_VERSION
        spin_lock(ctx.guest_vers_lock)
        if ctx.guest_vers.read():
            spin_unlock(ctx.guest_vers_lock)  # out_continue:
            return None
        if fid != abi.FFA_VERSION:
            tmp = ctx.guest_vers_tmp.get()
            if not tmp:
                spin_unlock(ctx.guest_vers_lock)  # out_handled:
                return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
            # is_64bit cannot be set at domain init; it is read only under the list rwlock.
            ctx.is_64bit = is_64bit_domain(d)
            # Final: publish guest_vers once, never to change.
            ctx.guest_vers.set(tmp)
            if self.CONFIG_FFA_VM_TO_VM:
                # Publish VM membership changes atomically with tag updates.
                write_lock(self.ffa_ctx_list_rwlock)
                self.inc_ffa_vm_count()
                self.ffa_ctx_head.append(ctx)
                ctx.in_ctx_list = True
                self.ffa_partinfo_inc_tag()
                write_unlock(self.ffa_ctx_list_rwlock)
            spin_unlock(ctx.guest_vers_lock)  # out_continue:
            return None
        # The answer is always our version; the guest's choice decides the layouts it gets.
        if abi.version_major(in_vers) != abi.version_major(
            self.FFA_MY_VERSION
        ) or abi.version_minor(in_vers) > abi.version_minor(self.FFA_MY_VERSION):
            ctx.guest_vers_tmp.set(self.FFA_MY_VERSION)
        else:
            ctx.guest_vers_tmp.set(in_vers)
        spin_unlock(ctx.guest_vers_lock)  # out_handled:
        return ffa_set_regs(out_vers)

    # -- FFA_FEATURES -----------------------------------------------------------------------------
    def handle_features(self, d: Domain, regs: Regs) -> Regs:
        """What Xen offers the guest (w2..w7 are ignored at HEAD)."""
        ctx = d.tee
        assert ctx is not None
        a1 = regs[1] & abi.MASK32
        if not is_64bit_domain(d) and abi.is_64bit_fid(a1):
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        if a1 in _UNSUPPORTED_AT_PHYS:
            # Physical-instance-only ABIs are not exposed to VMs.
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        if a1 in _FEATURES_ALWAYS:
            return ffa_set_regs_success(0, 0)
        supports = self.ffa_fw_supports_fid
        gv = ctx.guest_vers.read
        match a1:
            case abi.FFA_MSG_SEND_DIRECT_REQ_32 | abi.FFA_MSG_SEND_DIRECT_REQ_64 | abi.FFA_RUN:
                ok = supports(a1)
            case abi.FFA_MSG_SEND2:
                # Forwarding SEND2 to an SP needs the VM's buffers mapped in the SPMC.
                ok = self.CONFIG_FFA_VM_TO_VM or (
                    supports(abi.FFA_MSG_SEND2) and supports(abi.FFA_RX_ACQUIRE)
                )
            case abi.FFA_MSG_SEND_DIRECT_REQ2:
                ok = gv() >= abi.FFA_VERSION_1_2 and supports(abi.FFA_MSG_SEND_DIRECT_REQ2)
            case abi.FFA_MEM_SHARE_64 | abi.FFA_MEM_SHARE_32:
                # w2 bit 0 clear: no dynamically allocated buffers.
                ok = supports(abi.FFA_MEM_SHARE_64)
            case abi.FFA_RXTX_MAP_64 | abi.FFA_RXTX_MAP_32:
                # 4K granule (w2[1:0] = 0); from v1.2 the most pages in w2[31:16].
                if gv() < abi.FFA_VERSION_1_2:
                    return ffa_set_regs_success(0, 0)
                return ffa_set_regs_success(FFA_MAX_RXTX_PAGE_COUNT << 16, 0)
            case abi.FFA_FEAT_NOTIF_PEND_INTR:
                return ffa_set_regs_success(GUEST_FFA_NOTIF_PEND_INTR_ID, 0)
            case abi.FFA_FEAT_SCHEDULE_RECV_INTR:
                return ffa_set_regs_success(GUEST_FFA_SCHEDULE_RECV_INTR_ID, 0)
            case abi.FFA_PARTITION_INFO_GET_REGS:
                ok = gv() >= abi.FFA_VERSION_1_2
            case _:
                ok = False
        if ok:
            return ffa_set_regs_success(0, 0)
        return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)

    # -- the dispatcher ---------------------------------------------------------------------------
    def ffa_handle_call(self, d: Domain, regs: Regs) -> Regs | None:
        """Handle FF-A call ``regs`` from ``d`` (current->domain); None when ``d`` has no FF-A
        context (vsmc then answers SMCCC NOT_SUPPORTED)."""
        ctx = d.tee
        if ctx is None:
            return None
        fid = regs[0] & abi.MASK32
        if not is_64bit_domain(d) and abi.is_64bit_fid(fid):
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        if not ctx.guest_vers.read():
            r = self.ffa_negotiate_version(d, ctx, regs)
            if r is not None:
                return r
        e: int
        match fid:
            case abi.FFA_VERSION:
                return ffa_set_regs(self.FFA_MY_VERSION)
            case abi.FFA_ID_GET:
                return ffa_set_regs_success(ffa_get_vm_id(d), 0)
            case abi.FFA_FEATURES:
                return self.handle_features(d, regs)
            case abi.FFA_RXTX_MAP_32 | abi.FFA_RXTX_MAP_64:
                e = self.ffa_handle_rxtx_map(d, fid, regs[1], regs[2], regs[3])
            case abi.FFA_RXTX_UNMAP:
                e = self.ffa_handle_rxtx_unmap(d)
            case abi.FFA_PARTITION_INFO_GET:
                return self.ffa_handle_partition_info_get(d, regs)
            case abi.FFA_PARTITION_INFO_GET_REGS:
                return self.ffa_handle_partition_info_get_regs(d, regs)
            case abi.FFA_RX_RELEASE:
                e = self.ffa_rx_release(ctx)
            case abi.FFA_MSG_SEND_DIRECT_REQ_32 | abi.FFA_MSG_SEND_DIRECT_REQ_64:
                return self.ffa_handle_msg_send_direct_req(d, regs, fid)
            case abi.FFA_MSG_SEND_DIRECT_REQ2:
                if ctx.guest_vers.read() >= abi.FFA_VERSION_1_2:
                    return self.ffa_handle_msg_send_direct_req(d, regs, fid)
                e = abi.FFA_RET_NOT_SUPPORTED
            case abi.FFA_RUN:
                return self.ffa_handle_run(d, regs, fid)
            case abi.FFA_MSG_SEND2:
                e = self.ffa_handle_msg_send2(d, regs)
            case abi.FFA_MEM_SHARE_32 | abi.FFA_MEM_SHARE_64:
                return self.ffa_handle_mem_share(d, regs)
            case abi.FFA_MEM_RECLAIM:
                e = self.ffa_handle_mem_reclaim(
                    d, abi.make_handle(regs[1], regs[2]), regs[3] & abi.MASK32
                )
            case abi.FFA_NOTIFICATION_BIND:
                e = self.ffa_handle_notification_bind(d, regs)
            case abi.FFA_NOTIFICATION_UNBIND:
                e = self.ffa_handle_notification_unbind(d, regs)
            case abi.FFA_NOTIFICATION_INFO_GET_32 | abi.FFA_NOTIFICATION_INFO_GET_64:
                return self.ffa_handle_notification_info_get(d, regs)
            case abi.FFA_NOTIFICATION_GET:
                return self.ffa_handle_notification_get(d, regs)
            case abi.FFA_NOTIFICATION_SET:
                e = self.ffa_handle_notification_set(d, regs)
            case _:
                self.printk(f"unhandled fid {fid:#x}")
                e = abi.FFA_RET_NOT_SUPPORTED
        if e:
            return ffa_set_regs_error(e)
        return ffa_set_regs_success(0, 0)

    # -- domain lifecycle -------------------------------------------------------------------------
    def ffa_domain_init(self, d: Domain) -> int:
        """Create ``d``'s context and tell the SPs; a negative errno on failure (the caller
        still runs teardown then, as Xen does)."""
        if not self.CONFIG_FFA_VM_TO_VM and not self.ffa_fw_version:
            return -ENODEV
        if d.domain_id >= DOMID_FIRST_RESERVED:
            return -ERANGE
        if not xmalloc(self.machine, "xzalloc", "ffa_domain_init"):
            return -ENOMEM
        ctx = FfaCtx(self.machine, d)
        d.tee = ctx
        ctx.ffa_id = ffa_get_vm_id(d)
        ctx.num_vcpus = d.max_vcpus
        ret = self.ffa_partinfo_domain_init(d)
        if ret:
            return ret
        ret = self.ffa_rxtx_domain_init(d)
        if ret:
            return ret
        return self.ffa_notif_domain_init(d)

    def ffa_domain_teardown_continue(self, ctx: FfaCtx, first_time: bool) -> None:
        """Finish what can be finished; queue the rest for a retry in 1 s."""
        if ctx.freed:
            # Xen would now read freed memory (the ctx and its domain); the model reports the
            # use after free and stops there rather than guess what that memory holds.
            self.machine.sink.violation(
                "use-after-free", f"teardown timer uses the freed ffa_ctx of vm {ctx.ffa_id:#x}"
            )
            return
        next_ctx: FfaCtx | None = None
        retry = False
        if not self.ffa_partinfo_domain_destroy(ctx.teardown_d):
            retry = True
        if not self.ffa_shm_domain_destroy(ctx.teardown_d):
            retry = True
        if retry:
            self.printk(f"{ctx.teardown_d}: Remaining cleanup, retrying")
            ctx.teardown_expire = self.now + FFA_CTX_TEARDOWN_DELAY
            spin_lock(self.ffa_teardown_lock)
            head = self.ffa_teardown_head.get()
            self.ffa_teardown_head.set([*head, ctx])
            next_ctx = self.ffa_teardown_head.get()[0]
            spin_unlock(self.ffa_teardown_lock)
        else:
            if not first_time:
                spin_lock(self.ffa_teardown_lock)
                head = self.ffa_teardown_head.get()
                next_ctx = head[0] if head else None
                spin_unlock(self.ffa_teardown_lock)
        if next_ctx is not None:
            self.ffa_teardown_timer = next_ctx.teardown_expire  # set_timer()

    def ffa_teardown_timer_callback(self) -> None:
        spin_lock(self.ffa_teardown_lock)
        head = self.ffa_teardown_head.get()
        ctx = head[0] if head else None
        if ctx is not None:
            self.ffa_teardown_head.set(head[1:])
        spin_unlock(self.ffa_teardown_lock)
        if ctx is not None:
            self.ffa_domain_teardown_continue(ctx, False)
        else:
            self.printk("teardown list is empty")

    def ffa_domain_teardown(self, d: Domain) -> int:
        """Undo ``ffa_domain_init``: unpublish, unmap the buffers, destroy the notification
        bitmap, then tell the SPs and reclaim the shares (retried from the timer)."""
        ctx = d.tee
        if ctx is None:
            return 0
        if self.CONFIG_FFA_VM_TO_VM and ctx.guest_vers.read():
            # Publish VM membership changes atomically with tag updates.
            write_lock(self.ffa_ctx_list_rwlock)
            self.dec_ffa_vm_count()
            if ctx in self.ffa_ctx_head:
                self.ffa_ctx_head.remove(ctx)
            ctx.in_ctx_list = False
            self.ffa_partinfo_inc_tag()
            write_unlock(self.ffa_ctx_list_rwlock)
        self.ffa_rxtx_domain_destroy(d)
        self.ffa_notif_domain_destroy(d)
        self.ffa_domain_teardown_continue(ctx, True)
        return 0

    def ffa_free_domain_ctx(self, d: Domain) -> None:
        if d.tee is not None:
            d.tee.freed = True
        d.tee = None

    def ffa_relinquish_resources(self, d: Domain) -> int:
        return 0

    # -- probe (after the domain lifecycle, as in ffa.c) ------------------------------------------
    def ffa_probe_fw(self) -> bool:
        """Negotiate with the SPMC, ask it about every ABI Xen uses, register Xen's RX/TX pair
        and cache the SPs; on any failure forget the firmware entirely (``err_no_fw``)."""
        goto = ""
        if self.smccc_ver < 0x10002:
            self.printk(f"unsupported SMCCC version {self.smccc_ver:#x}")
            goto = "err_no_fw"
        if not goto:
            ok, vers = self.ffa_get_version()
            if not ok:
                self.printk("Cannot retrieve the FFA version")
                goto = "err_no_fw"
        if not goto:
            major = abi.version_major(vers)
            minor = abi.version_minor(vers)
            if major != abi.version_major(self.FFA_MY_VERSION) or minor < abi.version_minor(
                FFA_MIN_SPMC_VERSION
            ):
                self.printk(f"Incompatible firmware version {major}.{minor}")
                goto = "err_no_fw"
        if not goto:
            # Ours when the firmware's minor is higher, else the firmware's (spec 13.2.1).
            if minor > abi.version_minor(self.FFA_MY_VERSION):
                self.ffa_fw_version = self.FFA_MY_VERSION
            else:
                self.ffa_fw_version = vers
            for fid in self.ffa_fw_abi_needed:
                if self.ffa_abi_supported(fid):
                    self.ffa_fw_abi_supported.add(FFA_ABI_BITNUM(fid))
                else:
                    self.printk(f"Firmware does not support {abi.name(fid)}")
            # Hafnium v2.14 or earlier does not report FFA_RX_ACQUIRE in FFA_FEATURES even
            # though it supports it (4992308e97).
            if not self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE) and self.ffa_fw_supports_fid(
                abi.FFA_MSG_SEND2
            ):
                self.printk("Firmware reports FFA_MSG_SEND2 without FFA_RX_ACQUIRE: assuming it")
                self.ffa_fw_abi_supported.add(FFA_ABI_BITNUM(abi.FFA_RX_ACQUIRE))
            if not self.ffa_rxtx_spmc_init():
                self.printk("Error during RXTX buffer init")
                goto = "err_no_fw"
            elif not self.ffa_partinfo_init():
                goto = "err_rxtx_destroy"
        if not goto:
            self.ffa_notif_init()
            return True
        if goto == "err_rxtx_destroy":
            self.ffa_rxtx_spmc_destroy()
        self.ffa_fw_version = 0  # err_no_fw:
        self.ffa_fw_abi_supported.clear()
        self.printk("ARM FF-A No firmware support")
        return False

    def ffa_probe_vm_to_vm(self) -> bool:
        if not self.CONFIG_FFA_VM_TO_VM:
            return False
        self.printk("VM to VM is enabled, system is insecure !!")
        return True

    def ffa_probe(self) -> bool:
        self.printk(f"ARM FF-A Mediator version {abi.version_str(self.FFA_MY_VERSION)}")
        fw = self.ffa_probe_fw()
        if not fw and not self.ffa_probe_vm_to_vm():
            return False
        if not self.ffa_fw_version:
            self.printk("ARM FF-A only available between VMs")
        self.probed = True
        return True
