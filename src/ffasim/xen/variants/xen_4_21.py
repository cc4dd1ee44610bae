"""Variant ``xen-4.21``: Xen's FF-A mediator as released in RELEASE-4.21.0 (tee/ffa at
911b305e7b; 4.21.1 and 4.21.2 did not change it).

4.21.0 is the seed's parent minus the first five patches of the FF-A v1.2 series, so the class
derives from ``seed-v1`` and undoes, function by function, a9eb6c6269 (v1.2 function IDs),
ad2d3a7daf (per-VM version negotiation state), 6e8c62d457 (is_64bit at negotiation),
a3075e2fda (RX/TX mapping hardening) and 9e9504ef32 (the SPMC buffer helpers) - and the seed's
two ASSERTs, which were never committed. Its defects, each found by a command of the README:

- SEND2 between VMs re-reads the sender's header after validation (no ``barrier()``: fixed by
  c447b7308b): a double fetch of guest memory;
- SEND2 dereferences the sender's TX when none is mapped (a NULL dereference: a hypervisor
  crash; fixed by 3528248b8c);
- FFA_RXTX_MAP and FFA_RXTX_UNMAP take no lock (a3075e2fda added them): two vCPUs mapping at
  once both succeed and the first pair's page references leak, and an unmap can drop the RX
  under a producer that is writing it;
- FFA_RXTX_MAP accepts a page count of 0 (a3075e2fda): buffers that can never be unmapped;
- FFA_VERSION can change the version at any time, under ``ctx->lock`` while every reader reads
  it without (ad2d3a7daf): a data race; and calls work before any FFA_VERSION (version 0);
- VM-to-VM partition info reports every VM as AArch32: ``is_64bit`` is read at domain init,
  before the domain builder sets the domain's type (6e8c62d457);
- FFA_RX_RELEASE is sent after a failed FFA_PARTITION_INFO_GET at boot, so the SPMC refuses it;
  ``ffa_rxtx_destroy`` frees Xen's pages before FFA_RXTX_UNMAP (seed defects 3 and 4 in their
  4.21 form);
- RX_ACQUIRE is never probed: VM buffers are never registered with the SPMC, so SEND2 to an SP
  fails at the SPMC (and the forwarding code, with its unaligned 12/44 descriptor offsets, never
  runs).
"""

from __future__ import annotations

from ... import abi
from ...machine import (
    ASSERT,
    Frame,
    Guarded,
    Machine,
    P2MType,
    SmcConduit,
    Spinlock,
    get_page_from_gfn,
    put_page,
    spin_is_locked,
    spin_lock,
    spin_unlock,
    write_lock,
    write_unlock,
)
from ...machine.xmalloc import alloc_site, map_domain_page_global, xmalloc
from ..ffa_private import (
    DOMID_FIRST_RESERVED,
    ENODEV,
    ENOMEM,
    ERANGE,
    FFA_ABI_BITNUM,
    FFA_ID_IS_SECURE,
    FFA_MAX_NUM_SP,
    FFA_MAX_RXTX_PAGE_COUNT,
    FFA_PAGE_SIZE,
    FFA_PARTITION_INFO_1_0,
    FFA_RXTX_PAGE_COUNT,
    Cursor,
    Domain,
    FfaCtx,
    FfaShmMem,
    MappedBuf,
    Regs,
    ffa_get_vm_id,
    ffa_set_regs,
    ffa_set_regs_error,
    ffa_set_regs_success,
    is_64bit_domain,
)
from ..ffa_rxtx import (
    FFA_ENDPOINT_RXTX_DESCRIPTOR_1_1,
    MEM_REGION_ONE_RANGE,
    rxtx_unmap_pages,
    unmap_domain_page_global,
    write_mem_region,
    write_rxtx_descriptor,
    xenheap_buf,
)
from .seed_v1 import SEED_FW_ABI_NEEDED, SeedV1Ffa, write_share_descriptor_1_1

# ffa_fw_abi_needed[] before a9eb6c6269, which added FFA_MSG_SEND_DIRECT_REQ2 and FFA_RUN.
FW_ABI_NEEDED_4_21 = tuple(
    fid for fid in SEED_FW_ABI_NEEDED if fid not in (abi.FFA_MSG_SEND_DIRECT_REQ2, abi.FFA_RUN)
)


class LockedGuestVers(Guarded[int]):
    """``ctx->guest_vers`` before ad2d3a7daf: written by FFA_VERSION under ``ctx->lock`` at any
    time, read everywhere else without it (``read`` is a plain read of the guarded field)."""

    def read(self) -> int:
        return self.get()


class Xen421Ffa(SeedV1Ffa):
    """RELEASE-4.21.0 (see the module docstring)."""

    variant = "xen-4.21"
    ffa_fw_abi_needed = FW_ABI_NEEDED_4_21
    FFA_FNUM_MAX_VALUE = 0x86  # a9eb6c6269 raised it to 0x8E

    def __init__(self, machine: Machine, conduit: SmcConduit, vm_to_vm: bool = False) -> None:
        super().__init__(machine, conduit, vm_to_vm)
        m = self.machine
        # ffa.c's globals before 9e9504ef32 moved them into ffa_rxtx.c as ffa_spmc_rx/tx.
        self.ffa_rx_buffer_lock = Spinlock(m, "ffa_rx_buffer_lock")
        self.ffa_tx_buffer_lock = Spinlock(m, "ffa_tx_buffer_lock")
        self.ffa_rx: Guarded[Frame | None] = Guarded(m, "ffa_rx", None, self.ffa_rx_buffer_lock)
        self.ffa_tx: Guarded[Frame | None] = Guarded(m, "ffa_tx", None, self.ffa_tx_buffer_lock)

    def ffa_fw_buffers(self) -> list[Frame]:  # the audit's view of ffa_rx/ffa_tx
        return [f for f in (self.ffa_rx.value, self.ffa_tx.value) if f is not None]

    # -- ffa_private.h ----------------------------------------------------------------------------
    def ffa_hyp_rx_release(self) -> int:
        """Tell the SPMC that Xen is done with its RX (9e9504ef32 folded it into
        ``ffa_rxtx_spmc_rx_release``)."""
        return self.ffa_simple_call(abi.FFA_RX_RELEASE, 0, 0, 0, 0)

    # -- ffa.c ------------------------------------------------------------------------------------
    def handle_version(self, d: Domain, regs: Regs) -> Regs:
        """Before ad2d3a7daf: any FFA_VERSION of our major sets the guest's version, at any
        time, under ``ctx->lock``; with VM-to-VM the first one publishes the VM. The answer is
        always our version."""
        ctx = d.tee
        assert ctx is not None
        vers = regs[1] & abi.MASK32
        if abi.version_major(vers) == abi.version_major(self.FFA_MY_VERSION):
            spin_lock(ctx.lock)
            old_vers = ctx.guest_vers.read()
            if abi.version_minor(vers) > abi.version_minor(self.FFA_MY_VERSION):
                ctx.guest_vers.set(self.FFA_MY_VERSION)
            else:
                ctx.guest_vers.set(vers)
            spin_unlock(ctx.lock)
            if self.CONFIG_FFA_VM_TO_VM and not old_vers:
                self.inc_ffa_vm_count()  # one more VM with FF-A support
                write_lock(self.ffa_ctx_list_rwlock)
                self.ffa_ctx_head.append(ctx)
                ctx.in_ctx_list = True
                write_unlock(self.ffa_ctx_list_rwlock)
        return ffa_set_regs(self.FFA_MY_VERSION)

    def ffa_handle_call(self, d: Domain, regs: Regs) -> Regs | None:
        """Before ad2d3a7daf: no negotiation gate (a call before any FFA_VERSION is served with
        version 0), FFA_VERSION goes to ``handle_version``."""
        ctx = d.tee
        if ctx is None:
            return None
        fid = regs[0] & abi.MASK32
        e: int
        match fid:
            case abi.FFA_VERSION:
                return self.handle_version(d, regs)
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
            case abi.FFA_RX_RELEASE:
                e = self.ffa_rx_release(ctx)
            case abi.FFA_MSG_SEND_DIRECT_REQ_32 | abi.FFA_MSG_SEND_DIRECT_REQ_64:
                return self.ffa_handle_msg_send_direct_req(d, regs, fid)
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
                return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        if e:
            return ffa_set_regs_error(e)
        return ffa_set_regs_success(0, 0)

    def ffa_domain_init(self, d: Domain) -> int:
        """Before 6e8c62d457: ``is_64bit`` is read here, before the domain builder has set the
        domain's type (so it is false for every domain); before ad2d3a7daf: ``guest_vers`` is
        under ``ctx->lock``; before a3075e2fda: no ``ffa_rxtx_domain_init``."""
        if not self.CONFIG_FFA_VM_TO_VM and not self.ffa_fw_version:
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
        ctx.is_64bit = is_64bit_domain(d)
        ret = self.ffa_partinfo_domain_init(d)
        if ret:
            return ret
        return self.ffa_notif_domain_init(d)

    def ffa_probe_fw(self) -> bool:
        """Before 9e9504ef32: ``ffa_rxtx_init``/``ffa_rxtx_destroy`` set up Xen's pair."""
        goto = ""
        vers = minor = 0
        if self.smccc_ver < 0x10002:
            goto = "err_no_fw"
        if not goto:
            ok, vers = self.ffa_get_version()
            if not ok:
                self.printk("Cannot retrieve the FFA version")
                goto = "err_no_fw"
        if not goto:
            major = abi.version_major(vers)
            minor = abi.version_minor(vers)
            if major != abi.version_major(self.FFA_MY_VERSION) or minor < 1:
                self.printk(f"Incompatible firmware version {major}.{minor}")
                goto = "err_no_fw"
        if not goto:
            if minor > abi.version_minor(self.FFA_MY_VERSION):
                self.ffa_fw_version = self.FFA_MY_VERSION
            else:
                self.ffa_fw_version = vers
            for fid in self.ffa_fw_abi_needed:
                if self.ffa_abi_supported(fid):
                    self.ffa_fw_abi_supported.add(FFA_ABI_BITNUM(fid))
                else:
                    self.printk(f"Firmware does not support {abi.name(fid)}")
            if not self.ffa_rxtx_init():
                self.printk("Error during RXTX buffer init")
                goto = "err_no_fw"
            elif not self.ffa_partinfo_init():
                goto = "err_rxtx_destroy"
        if not goto:
            self.ffa_notif_init()
            return True
        if goto == "err_rxtx_destroy":
            self.ffa_rxtx_destroy()
        self.ffa_fw_version = 0  # err_no_fw:
        self.ffa_fw_abi_supported.clear()
        self.printk("ARM FF-A No firmware support")
        return False

    # -- ffa_rxtx.c -------------------------------------------------------------------------------
    def ffa_handle_rxtx_map(
        self, d: Domain, fid: int, tx_addr: int, rx_addr: int, page_count: int
    ) -> int:
        """Before a3075e2fda: no lock at all (two vCPUs can both find nothing mapped and both
        map: the first pair's references leak), no check of a zero page count or of the
        alignment; a global-mapping failure is INVALID_PARAMETERS. Before 9e9504ef32 the
        forwarding (unreachable: RX_ACQUIRE is never probed) uses ``ffa_tx`` under
        ``ffa_tx_buffer_lock``, the RX region at offset 12."""
        ctx = d.tee
        assert ctx is not None
        ret = abi.FFA_RET_INVALID_PARAMETERS
        page_count &= abi.MASK32
        if not abi.is_64bit_fid(fid):
            tx_addr &= abi.MASK32
            rx_addr &= abi.MASK32
        if page_count > FFA_MAX_RXTX_PAGE_COUNT:
            self.printk(f"RXTX_MAP: error: {page_count} pages requested (limit 1)")
            return abi.FFA_RET_INVALID_PARAMETERS
        if ctx.rx.get() is not None:  # already mapped (read with no lock held)
            return abi.FFA_RET_DENIED
        e = get_page_from_gfn(d.p2m, tx_addr >> 12)
        if e is None:
            return abi.FFA_RET_INVALID_PARAMETERS
        tx_pg, t = e
        goto = "err_put_tx_pg" if t is not P2MType.ram_rw else ""
        rx_pg: Frame | None = None
        tx = rx = None
        if not goto:
            e = get_page_from_gfn(d.p2m, rx_addr >> 12)
            if e is None:
                goto = "err_put_tx_pg"
            else:
                rx_pg, t = e
                if t is not P2MType.ram_rw:
                    goto = "err_put_rx_pg"
        if not goto:
            tx_pa = map_domain_page_global(self.machine, tx_pg, "ffa_handle_rxtx_map")
            if tx_pa is None:
                goto = "err_put_rx_pg"
            else:
                tx = MappedBuf(self.machine, tx_pa, page_count * FFA_PAGE_SIZE, "TX")
        if not goto:
            assert rx_pg is not None
            rx_pa = map_domain_page_global(self.machine, rx_pg, "ffa_handle_rxtx_map")
            if rx_pa is None:
                goto = "err_unmap_tx"
            else:
                rx = MappedBuf(self.machine, rx_pa, page_count * FFA_PAGE_SIZE, "RX")
        if not goto and self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE):
            assert rx_pg is not None
            spin_lock(self.ffa_tx_buffer_lock)
            frame = self.ffa_tx.get()
            assert frame is not None
            desc = xenheap_buf(self.machine, frame, "ffa_tx")
            rx_offs = FFA_ENDPOINT_RXTX_DESCRIPTOR_1_1.size
            tx_offs = rx_offs + MEM_REGION_ONE_RANGE
            write_rxtx_descriptor(desc, ffa_get_vm_id(d), rx_offs, tx_offs)
            write_mem_region(desc, rx_offs, rx_pg.pa)
            write_mem_region(desc, tx_offs, tx_pg.pa)
            ret = self.ffa_rxtx_map(0, 0, 0)
            spin_unlock(self.ffa_tx_buffer_lock)
            if ret != abi.FFA_RET_OK:
                goto = "err_unmap_rx"
        if not goto:
            ctx.rx.set(rx)  # with no lock held
            ctx.tx.set(tx)
            ctx.rx_pg.set(rx_pg)
            ctx.tx_pg.set(tx_pg)
            ctx.page_count = page_count
            ctx.rx_is_free.set(True)
            return abi.FFA_RET_OK
        if goto == "err_unmap_rx":
            assert rx is not None
            unmap_domain_page_global(rx)
            goto = "err_unmap_tx"
        if goto == "err_unmap_tx":
            assert tx is not None
            unmap_domain_page_global(tx)
            goto = "err_put_rx_pg"
        if goto == "err_put_rx_pg":
            assert rx_pg is not None
            put_page(rx_pg)
        put_page(tx_pg)  # err_put_tx_pg:
        return ret

    def rxtx_unmap(self, d: Domain, teardown: bool) -> int:
        """Before a3075e2fda: no lock (the buffers can go while a producer that took the RX
        is writing it, or while another vCPU maps)."""
        ctx = d.tee
        assert ctx is not None
        if not ctx.page_count:
            return abi.FFA_RET_INVALID_PARAMETERS
        if self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE):
            ret = self.ffa_rxtx_unmap(ffa_get_vm_id(d))
            if ret != abi.FFA_RET_OK:
                return ret
        rxtx_unmap_pages(ctx)
        return abi.FFA_RET_OK

    def ffa_rxtx_destroy(self) -> None:
        """Seed defect 4 before the seed: free Xen's pair, then FFA_RXTX_UNMAP if both pages
        existed (no locks: boot only)."""
        tx = self.ffa_tx.value
        rx = self.ffa_rx.value
        need_unmap = tx is not None and rx is not None
        if tx is not None:
            self.machine.heap.free_page(tx)
            self.ffa_tx.value = None
        if rx is not None:
            self.machine.heap.free_page(rx)
            self.ffa_rx.value = None
        if need_unmap:
            self.ffa_rxtx_unmap(0)

    def ffa_rxtx_init(self) -> bool:
        """Allocate Xen's pair and register it with the SPMC (boot: no locks)."""
        if not self.ffa_fw_supports_fid(abi.FFA_RXTX_MAP_64):
            return False
        heap = self.machine.heap
        site = alloc_site("alloc_xenheap_pages", "ffa_rxtx_init")
        rx = heap.alloc_page("xen", site=site, tag="ffa_rx")
        self.ffa_rx.value = rx
        if rx is None:
            return False
        tx = heap.alloc_page("xen", site=site, tag="ffa_tx")
        self.ffa_tx.value = tx
        if tx is not None and not self.ffa_rxtx_map(tx.pa, rx.pa, FFA_RXTX_PAGE_COUNT):
            return True
        self.ffa_rxtx_destroy()  # err:
        return False

    # -- ffa_partinfo.c ---------------------------------------------------------------------------
    def ffa_get_sp_partinfo(
        self, uuid: bytes, dst_buf: Cursor, end_buf: int, dst_size: int
    ) -> tuple[int, int]:
        """Before 9e9504ef32: ``ffa_rx`` under ``ffa_rx_buffer_lock``; the RX is released only
        when the SPMC filled it (the seed broke that: its defect 3)."""
        if self.ffa_rx.value is None:
            return abi.FFA_RET_DENIED, 0
        spin_lock(self.ffa_rx_buffer_lock)
        frame = self.ffa_rx.get()
        assert frame is not None
        src = xenheap_buf(self.machine, frame, "ffa_rx")
        count = 0
        ret, real_sp_count, src_size = self.ffa_partition_info_get(uuid, 0)
        if not ret:  # we now own the RX buffer
            if src_size < FFA_PARTITION_INFO_1_0.size or src_size >= FFA_PAGE_SIZE:
                ret = abi.FFA_RET_NOT_SUPPORTED
            else:
                real_sp_count = min(real_sp_count, FFA_MAX_NUM_SP)
                if real_sp_count > (FFA_RXTX_PAGE_COUNT * FFA_PAGE_SIZE) // src_size:
                    ret = abi.FFA_RET_NOT_SUPPORTED
            if not ret:
                dst = dst_buf.off
                for sp_num in range(real_sp_count):
                    if FFA_ID_IS_SECURE(src.u16(sp_num * src_size)):
                        if dst > end_buf - dst_size:
                            ret = abi.FFA_RET_NO_MEMORY
                            break
                        dst_buf.buf.store(dst, src.load(sp_num * src_size, min(src_size, dst_size)))
                        if dst_size > src_size:
                            dst_buf.buf.memset(dst + src_size, 0, dst_size - src_size)
                        dst += dst_size
                        count += 1
            self.ffa_hyp_rx_release()  # out_release:
        spin_unlock(self.ffa_rx_buffer_lock)  # out:
        return ret, count if not ret else 0

    def ffa_partinfo_init(self) -> bool:
        """Before 9e9504ef32: gated on ``ffa_rx`` and ``ffa_tx``, no lock (boot), and
        FFA_RX_RELEASE even after a failed FFA_PARTITION_INFO_GET."""
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
        elif count >= FFA_MAX_NUM_SP:
            self.printk(f"More SPs than the maximum supported: {count} - {FFA_MAX_NUM_SP}")
        else:
            ret = self.init_subscribers(
                xenheap_buf(self.machine, self.ffa_rx.value, "ffa_rx"), count, fpi_size
            )
        self.ffa_hyp_rx_release()  # out:
        return ret

    # -- ffa_shm.c --------------------------------------------------------------------------------
    def share_shm(self, shm: FfaShmMem, ffa_vers: int) -> int:
        """Before 9e9504ef32: the descriptor goes in ``ffa_tx``, under ``ffa_tx_buffer_lock``
        that ``ffa_handle_mem_share`` takes around this call (taken here: the same events)."""
        spin_lock(self.ffa_tx_buffer_lock)
        ASSERT(spin_is_locked(self.ffa_tx_buffer_lock), "spin_is_locked(&ffa_tx_buffer_lock)")
        ASSERT(shm.page_count, "shm->page_count")
        frame = self.ffa_tx.get()
        assert frame is not None
        ret, tot_len = write_share_descriptor_1_1(xenheap_buf(self.machine, frame, "ffa_tx"), shm)
        if not ret:
            ret, shm.handle = self.ffa_mem_share(tot_len, tot_len, 0, 0)
        spin_unlock(self.ffa_tx_buffer_lock)
        return ret
