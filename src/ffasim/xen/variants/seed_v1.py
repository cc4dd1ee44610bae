"""Variant ``seed-v1``: the mediator as "[PATCH v1 05/12] xen/arm: ffa: rework SPMC RX/TX buffer
management" (Bertrand Marquis, 5 Dec 2025) leaves it, defects included.

The committed version of the patch is 9e9504ef32 (its v2, identical but for the two
``ASSERT(!spin_is_locked())`` lines); this is 9e9504ef32 plus those lines. It sits between
RELEASE-4.21.0 and RELEASE-4.22.0, so the class derives from ``xen-4.22`` and overrides each
function that the commits after 9e9504ef32 changed, under its C name, with the commit that
changed it in the docstring ("before <commit>"). The seed's defects:

1. ``ffa_rxtx_spmc_{rx,tx}_acquire`` start with ``ASSERT(!spin_is_locked())``, which panics
   when another CPU holds the lock (two guests in PARTITION_INFO_GET or RXTX_MAP);
2. acquire returns NULL with the lock still held and every caller returns without release
   (unreachable: every caller is gated on firmware bits that the probe clears whenever the
   buffers are missing; the checker forces the branch with ``helper:``);
3. ``ffa_rxtx_spmc_rx_release`` always sends FFA_RX_RELEASE, even when the call that should
   have filled the buffer failed (the SPMC answers DENIED);
4. ``ffa_rxtx_spmc_destroy`` frees the pages before FFA_RXTX_UNMAP, and unmaps a pair whose map
   had failed.

Other behaviour of the seed kept here: FF-A 1.1 to guests; RX_ACQUIRE never probed (so VM
buffers are never forwarded to the SPMC and SEND2 to an SP cannot work); live partition info
(the SPMC is asked on every call, through Xen's RX buffer, and the guest's entries are written
under ``ffa_spmc_rx_lock``); the subscriber arrays for VM created/destroyed; RXTX_UNMAP that
ignores RX ownership (a producer writing the RX can find it unmapped); SEND2 that reads a NULL
TX when no buffers are mapped and whose header fields may be re-read after validation (no
``barrier()``: see ``xen_4_22.py``); MEM_SHARE without the NS, EMAD size and alignment checks
and at most 255 pages; NOTIFICATION_SET to an SP refused (wrong halfword tested).
"""

from __future__ import annotations

import struct

from ... import abi
from ...machine import (
    ASSERT,
    Machine,
    P2MType,
    SmcConduit,
    get_page_from_gfn,
    put_page,
    read_lock,
    read_unlock,
    spin_is_locked,
    spin_lock,
    spin_trylock,
    spin_unlock,
    write_lock,
    write_unlock,
)
from ...machine.xmalloc import map_domain_page_global, xmalloc
from ..ffa import _FEATURES_ALWAYS, FFA_ABI_BITNUM, FFA_FW_ABI_NEEDED, FFA_MIN_SPMC_VERSION
from ..ffa_msg import _DIRECT_PASS, FFA_PART_MSG_RXTX_1_1, FfaPartMsgRxtx
from ..ffa_partinfo import vm_partition_info
from ..ffa_private import (
    EIO,
    ENOMEM,
    FFA_ADDRESS_RANGE,
    FFA_ID_IS_SECURE,
    FFA_MAX_NUM_SP,
    FFA_MAX_RXTX_PAGE_COUNT,
    FFA_MAX_SHM_PAGE_COUNT,
    FFA_MEM_REGION,
    FFA_PAGE_SIZE,
    FFA_PARTITION_INFO_1_0,
    FFA_PARTITION_INFO_1_1,
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
    ffa_uuid_set,
)
from ..ffa_rxtx import (
    FFA_ENDPOINT_RXTX_DESCRIPTOR_1_1,
    MEM_REGION_ONE_RANGE,
    rxtx_unmap_pages,
    unmap_domain_page_global,
    write_mem_region,
    write_rxtx_descriptor,
)
from ..ffa_shm import (
    _T10,
    _T11,
    FFA_MEM_ACCESS,
    FFA_MEM_TRANSACTION_1_0,
    FFA_MEM_TRANSACTION_1_1,
    INT32_MAX,
    UINT8_MAX,
    UINT16_MAX,
    FfaMemTransactionInt,
    init_range,
    load_field,
)
from .xen_4_22 import ReloadedPartMsg, Xen422Ffa


def _seed_fw_abi_needed() -> tuple[int, ...]:
    """The seed's ``ffa_fw_abi_needed[]``: HEAD's list as it was before 4992308e97, which
    added FFA_RX_ACQUIRE (so the seed never asks the SPMC about it) and dropped
    FFA_MEM_SHARE_32 (the seed probes it just before FFA_MEM_SHARE_64)."""
    out: list[int] = []
    for fid in FFA_FW_ABI_NEEDED:
        if fid == abi.FFA_RX_ACQUIRE:
            continue
        if fid == abi.FFA_MEM_SHARE_64:
            out.append(abi.FFA_MEM_SHARE_32)
        out.append(fid)
    return tuple(out)


SEED_FW_ABI_NEEDED = _seed_fw_abi_needed()

# What the seed's handle_features answers SUCCESS(0, 0) for: HEAD's unconditional set without
# FFA_INTERRUPT (patch 09 added it), plus what HEAD gates (4992308e97) and the seed offered
# whatever the firmware had: direct requests, SEND2, MEM_SHARE, RXTX_MAP (w2 = 0 for every one).
SEED_FEATURES = (_FEATURES_ALWAYS - {abi.FFA_INTERRUPT}) | {
    abi.FFA_MSG_SEND_DIRECT_REQ_32,
    abi.FFA_MSG_SEND_DIRECT_REQ_64,
    abi.FFA_MSG_SEND2,
    abi.FFA_MEM_SHARE_32,
    abi.FFA_MEM_SHARE_64,
    abi.FFA_RXTX_MAP_32,
    abi.FFA_RXTX_MAP_64,
}

# Replies a seed direct request passes back: HEAD's without FFA_MSG_YIELD and FFA_INTERRUPT.
SEED_DIRECT_PASS = _DIRECT_PASS - {abi.FFA_YIELD, abi.FFA_INTERRUPT}


def write_share_descriptor_1_1(buf: MappedBuf, shm: FfaShmMem) -> tuple[int, int]:
    """The part of ``share_shm`` before a90376c6ad that writes a v1.1 descriptor with 16-byte
    EMADs into Xen's TX ``buf`` (field by field; the region offset is read back from the
    buffer where it was just written): ``(ret, tot_len)``, NOT_SUPPORTED when it does not fit
    one page. The same in every version up to the seed."""
    buf.memset(0, 0, FFA_MEM_TRANSACTION_1_1.size)
    buf.store(0, struct.pack("<H", shm.sender_id))
    buf.store(8, struct.pack("<Q", shm.handle))
    buf.store(2, struct.pack("<H", abi.FFA_NORMAL_MEM_REG_ATTR))
    buf.store(28, struct.pack("<I", 1))
    buf.store(24, struct.pack("<I", FFA_MEM_ACCESS.size))
    mem_access_offs = FFA_MEM_TRANSACTION_1_1.size  # MEM_ACCESS_OFFSET(0)
    buf.store(32, struct.pack("<I", mem_access_offs))
    buf.memset(mem_access_offs, 0, FFA_MEM_ACCESS.size)
    buf.store(mem_access_offs, struct.pack("<H", shm.ep_id))
    buf.store(mem_access_offs + 2, bytes([abi.FFA_MEM_ACC_RW]))
    buf.store(mem_access_offs + 4, struct.pack("<I", mem_access_offs + FFA_MEM_ACCESS.size))
    region_offs = buf.u32(mem_access_offs + 4)
    buf.memset(region_offs, 0, FFA_MEM_REGION.size)
    buf.store(region_offs, struct.pack("<I", shm.page_count))
    ranges: list[list[int]] = []
    for pg in shm.pages:
        if ranges and ranges[-1][0] + ranges[-1][1] * FFA_PAGE_SIZE == pg.pa:
            ranges[-1][1] += 1
        else:
            ranges.append([pg.pa, 1])
    buf.store(region_offs + 4, struct.pack("<I", len(ranges)))
    tot_len = region_offs + FFA_MEM_REGION.size + len(ranges) * FFA_ADDRESS_RANGE.size
    if tot_len > FFA_RXTX_PAGE_COUNT * FFA_PAGE_SIZE:
        return abi.FFA_RET_NOT_SUPPORTED, tot_len
    addr_range = region_offs + FFA_MEM_REGION.size
    for pa, count in ranges:
        init_range(buf, addr_range, pa)
        if count > 1:
            buf.store(addr_range + 8, struct.pack("<I", count))
        addr_range += FFA_ADDRESS_RANGE.size
    return abi.FFA_RET_OK, tot_len


class SeedV1Ffa(Xen422Ffa):
    """The seed patch v1 (see the module docstring for what differs and why)."""

    variant = "seed-v1"
    FFA_MY_VERSION = abi.FFA_VERSION_1_1  # f42bacb20e raised it to 1.2
    ffa_fw_abi_needed = SEED_FW_ABI_NEEDED  # 4992308e97 added RX_ACQUIRE, dropped MEM_SHARE_32

    def __init__(self, machine: Machine, conduit: SmcConduit, vm_to_vm: bool = False) -> None:
        super().__init__(machine, conduit, vm_to_vm)
        # The subscriber arrays of ffa_partinfo.c (71518be79d replaced them by the SP cache).
        self.subscr_vm_created: list[int] = []
        self.subscr_vm_destroyed: list[int] = []

    # -- ffa.c ------------------------------------------------------------------------------------
    def ffa_get_version(self) -> tuple[bool, int]:
        """Before 00c4db5731: x0 is compared whole with -1 and kept in a u32."""
        resp = self.smc(abi.FFA_VERSION, self.FFA_MY_VERSION)
        if resp[0] == abi.FFA_RET_NOT_SUPPORTED & abi.MASK64:
            return False, 0
        return True, resp[0] & abi.MASK32

    def ffa_negotiate_version(self, d: Domain, ctx: FfaCtx, regs: Regs) -> Regs | None:
        """Before 500ee5fe0f: with VM-to-VM the VM is counted before the list's write lock is
        taken, and there is no partition-info tag (a count request in between sees one VM
        more than a listing would)."""
        fid = regs[0] & abi.MASK32
        in_vers = regs[1] & abi.MASK32
        spin_lock(ctx.guest_vers_lock)
        if ctx.guest_vers.read():
            spin_unlock(ctx.guest_vers_lock)  # out_continue:
            return None
        if fid != abi.FFA_VERSION:
            tmp = ctx.guest_vers_tmp.get()
            if not tmp:
                spin_unlock(ctx.guest_vers_lock)  # out_handled:
                return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
            ctx.is_64bit = d.is_64bit  # is_64bit_domain(d)
            ctx.guest_vers.set(tmp)
            if self.CONFIG_FFA_VM_TO_VM:
                self.inc_ffa_vm_count()  # one more VM with FF-A support
                write_lock(self.ffa_ctx_list_rwlock)
                self.ffa_ctx_head.append(ctx)
                ctx.in_ctx_list = True
                write_unlock(self.ffa_ctx_list_rwlock)
            spin_unlock(ctx.guest_vers_lock)  # out_continue:
            return None
        if abi.version_major(in_vers) != abi.version_major(
            self.FFA_MY_VERSION
        ) or abi.version_minor(in_vers) > abi.version_minor(self.FFA_MY_VERSION):
            ctx.guest_vers_tmp.set(self.FFA_MY_VERSION)
        else:
            ctx.guest_vers_tmp.set(in_vers)
        spin_unlock(ctx.guest_vers_lock)  # out_handled:
        return ffa_set_regs(self.FFA_MY_VERSION)

    def handle_features(self, d: Domain, regs: Regs) -> Regs:
        """Before 4992308e97: any non-zero w2..w7 is NOT_SUPPORTED, and the list is fixed."""
        a1 = regs[1] & abi.MASK32
        if any(regs[2:8]):
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        if a1 in SEED_FEATURES:
            return ffa_set_regs_success(0, 0)
        if a1 == abi.FFA_FEAT_NOTIF_PEND_INTR:
            return ffa_set_regs_success(8, 0)
        if a1 == abi.FFA_FEAT_SCHEDULE_RECV_INTR:
            return ffa_set_regs_success(9, 0)
        return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)

    def ffa_handle_call(self, d: Domain, regs: Regs) -> Regs | None:
        """Before f42bacb20e (no AArch32 check) and patches 09-11 (no RUN, REQ2, GET_REGS):
        an unknown function is logged at ERR and answered NOT_SUPPORTED."""
        ctx = d.tee
        if ctx is None:
            return None
        fid = regs[0] & abi.MASK32
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

    def ffa_domain_teardown(self, d: Domain) -> int:
        """Before 500ee5fe0f: uncounted before the write lock is taken, no tag."""
        ctx = d.tee
        if ctx is None:
            return 0
        if self.CONFIG_FFA_VM_TO_VM and ctx.guest_vers.read():
            self.dec_ffa_vm_count()
            write_lock(self.ffa_ctx_list_rwlock)
            if ctx in self.ffa_ctx_head:
                self.ffa_ctx_head.remove(ctx)
            ctx.in_ctx_list = False
            write_unlock(self.ffa_ctx_list_rwlock)
        self.ffa_rxtx_domain_destroy(d)
        self.ffa_notif_domain_destroy(d)
        self.ffa_domain_teardown_continue(ctx, True)
        return 0

    def ffa_probe_fw(self) -> bool:
        """Before 4992308e97: no Hafnium RX_ACQUIRE workaround (and RX_ACQUIRE is not in the
        list, so it is never set)."""
        goto = ""
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
            if major != abi.version_major(self.FFA_MY_VERSION) or minor < abi.version_minor(
                FFA_MIN_SPMC_VERSION
            ):
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

    # -- ffa_rxtx.c -------------------------------------------------------------------------------
    def ffa_handle_rxtx_map(
        self, d: Domain, fid: int, tx_addr: int, rx_addr: int, page_count: int
    ) -> int:
        """Before d1b958a92c: a global-mapping failure is INVALID_PARAMETERS (``ret``'s first
        value), and the forwarded descriptor puts the RX region right after its 12-byte
        header (offset 12, not 8-byte aligned; TX at 44). Forwarding needs RX_ACQUIRE, which
        the seed never probes: that code cannot run."""
        ctx = d.tee
        assert ctx is not None
        ret = abi.FFA_RET_INVALID_PARAMETERS
        page_count &= abi.MASK32
        if not abi.is_64bit_fid(fid):
            tx_addr &= abi.MASK32
            rx_addr &= abi.MASK32
        if page_count > FFA_MAX_RXTX_PAGE_COUNT or not page_count:
            self.printk(f"RXTX_MAP: error: {page_count} pages requested (limit 1)")
            return abi.FFA_RET_INVALID_PARAMETERS
        if tx_addr % FFA_PAGE_SIZE or rx_addr % FFA_PAGE_SIZE:
            return abi.FFA_RET_INVALID_PARAMETERS
        spin_lock(ctx.rx_lock)
        spin_lock(ctx.tx_lock)
        goto = ""
        tx_pg = rx_pg = None
        tx = rx = None
        if ctx.rx.get() is not None:
            ret, goto = abi.FFA_RET_DENIED, "err_unlock_rxtx"
        if not goto:
            e = get_page_from_gfn(d.p2m, tx_addr >> 12)
            if e is None:
                goto = "err_unlock_rxtx"
            else:
                tx_pg, t = e
                if t is not P2MType.ram_rw:
                    goto = "err_put_tx_pg"
        if not goto:
            e = get_page_from_gfn(d.p2m, rx_addr >> 12)
            if e is None:
                goto = "err_put_tx_pg"
            else:
                rx_pg, t = e
                if t is not P2MType.ram_rw:
                    goto = "err_put_rx_pg"
        if not goto:
            assert tx_pg is not None
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
            assert tx_pg is not None and rx_pg is not None
            desc = self.ffa_rxtx_spmc_tx_acquire()
            if desc is None:
                goto = "err_unmap_rx"  # ffa_spmc_tx_lock still held (defect 2)
            else:
                rx_offs = FFA_ENDPOINT_RXTX_DESCRIPTOR_1_1.size
                tx_offs = rx_offs + MEM_REGION_ONE_RANGE
                write_rxtx_descriptor(desc, ffa_get_vm_id(d), rx_offs, tx_offs)
                write_mem_region(desc, rx_offs, rx_pg.pa)
                write_mem_region(desc, tx_offs, tx_pg.pa)
                ret = self.ffa_rxtx_map(0, 0, 0)
                self.ffa_rxtx_spmc_tx_release()
                if ret != abi.FFA_RET_OK:
                    goto = "err_unmap_rx"
        if not goto:
            ctx.rx.set(rx)
            ctx.tx.set(tx)
            ctx.rx_pg.set(rx_pg)
            ctx.tx_pg.set(tx_pg)
            ctx.page_count = page_count
            ctx.rx_is_free.set(True)
            spin_unlock(ctx.tx_lock)
            spin_unlock(ctx.rx_lock)
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
            goto = "err_put_tx_pg"
        if goto == "err_put_tx_pg":
            assert tx_pg is not None
            put_page(tx_pg)
        spin_unlock(ctx.tx_lock)
        spin_unlock(ctx.rx_lock)
        return ret

    def rxtx_unmap(self, d: Domain, teardown: bool) -> int:
        """Before 309e8edfe3: no RX ownership check (a producer that took the RX can find it
        unmapped under it), and teardown releases nothing at the SPMC. The seed's takes no
        ``teardown`` argument: it is ignored."""
        ctx = d.tee
        assert ctx is not None
        ret = abi.FFA_RET_OK
        spin_lock(ctx.rx_lock)
        spin_lock(ctx.tx_lock)
        if not ctx.page_count:
            ret = abi.FFA_RET_INVALID_PARAMETERS
        else:
            if self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE):
                ret = self.ffa_rxtx_unmap(ffa_get_vm_id(d))
            if ret == abi.FFA_RET_OK:
                rxtx_unmap_pages(ctx)
        spin_unlock(ctx.tx_lock)  # err_unlock_rxtx:
        spin_unlock(ctx.rx_lock)
        return ret

    def ffa_rxtx_spmc_rx_acquire(self) -> MappedBuf | None:
        """Defect 1 (the v1 posting only: 9e9504ef32 dropped the line), then the helper as
        committed (defect 2: NULL returned with the lock held)."""
        ASSERT(not spin_is_locked(self.ffa_spmc_rx_lock), "!spin_is_locked(&ffa_spmc_rx_lock)")
        return super().ffa_rxtx_spmc_rx_acquire()

    def ffa_rxtx_spmc_tx_acquire(self) -> MappedBuf | None:
        """Defect 1 (v1 only), then the helper as committed (defect 2)."""
        ASSERT(not spin_is_locked(self.ffa_spmc_tx_lock), "!spin_is_locked(&ffa_spmc_tx_lock)")
        return super().ffa_rxtx_spmc_tx_acquire()

    def ffa_rxtx_spmc_rx_release(self, notify_fw: bool = True) -> int:
        """Before a97fe0a4c7: always FFA_RX_RELEASE (defect 3), failures only logged; the
        seed's takes no argument and returns nothing (0 here)."""
        ASSERT(spin_is_locked(self.ffa_spmc_rx_lock), "spin_is_locked(&ffa_spmc_rx_lock)")
        ret = self.ffa_simple_call(abi.FFA_RX_RELEASE, 0, 0, 0, 0)
        if ret != abi.FFA_RET_OK:
            self.printk(f"Error releasing SPMC RX buffer: {ret}")
        spin_unlock(self.ffa_spmc_rx_lock)
        return 0

    # -- ffa_partinfo.c ---------------------------------------------------------------------------
    def ffa_get_sp_count(self, uuid: bytes) -> tuple[int, int]:
        """Before cca899b380: the SPMC counts (FFA_PARTITION_INFO_GET with the count flag)."""
        ret, count, _ = self.ffa_partition_info_get(uuid, abi.FFA_PARTITION_INFO_GET_COUNT_FLAG)
        return ret, count

    def ffa_get_sp_partinfo(
        self, uuid: bytes, dst_buf: Cursor, end_buf: int, dst_size: int
    ) -> tuple[int, int]:
        """Before cca899b380: ask the SPMC on every call, through Xen's RX buffer, and copy
        each secure entry into the guest's RX (``memcpy`` then ``memset`` of the padding)
        while holding ``ffa_spmc_rx_lock``: ``(ret, sp_count)``. The RX is released whatever
        happened (defect 3). The seed's takes ``void *dst_buf`` and leaves it where it was
        (the caller moves it on by ``sp_count`` entries)."""
        src = self.ffa_rxtx_spmc_rx_acquire()
        if src is None:
            return abi.FFA_RET_DENIED, 0  # defect 2: ffa_spmc_rx_lock stays held
        count = 0
        ret, real_sp_count, src_size = self.ffa_partition_info_get(uuid, 0)
        if not ret:
            if src_size < FFA_PARTITION_INFO_1_0.size or src_size >= FFA_PAGE_SIZE:
                ret = abi.FFA_RET_NOT_SUPPORTED
            else:
                # Limit the time the CPU is held: extra SPs (added since boot) are ignored.
                real_sp_count = min(real_sp_count, FFA_MAX_NUM_SP)
                if real_sp_count > (FFA_RXTX_PAGE_COUNT * FFA_PAGE_SIZE) // src_size:
                    ret = abi.FFA_RET_NOT_SUPPORTED
        if not ret:
            dst = dst_buf.off
            for sp_num in range(real_sp_count):
                # Filter out SPs not following the bit 15 convention.
                if FFA_ID_IS_SECURE(src.u16(sp_num * src_size)):
                    if dst > end_buf - dst_size:
                        ret = abi.FFA_RET_NO_MEMORY
                        break
                    dst_buf.buf.store(dst, src.load(sp_num * src_size, min(src_size, dst_size)))
                    if dst_size > src_size:
                        dst_buf.buf.memset(dst + src_size, 0, dst_size - src_size)
                    dst += dst_size
                    count += 1
        self.ffa_rxtx_spmc_rx_release(True)  # out:
        return ret, count if not ret else 0

    def ffa_get_vm_partinfo(
        self,
        d: Domain,
        uuid: bytes,
        start_index: int,
        dst_buf: Cursor,
        end_buf: int,
        dst_size: int,
    ) -> tuple[int, int]:
        """Before 5c85600270 and ed6787f6d2: every other published VM, never the caller,
        whatever the UUID asked for (and no start index); ``(ret, vm_count)``, the count
        stored only on success."""
        curr_ctx = d.tee
        count = 0
        ret = abi.FFA_RET_OK
        read_lock(self.ffa_ctx_list_rwlock)
        for dest_ctx in self.ffa_ctx_head:
            if dest_ctx is curr_ctx:
                continue  # the spec does not mandate it and Linux does not support it
            if dst_buf.off > end_buf - dst_size:
                ret = abi.FFA_RET_NO_MEMORY
                break
            info = vm_partition_info(dest_ctx.ffa_id, dest_ctx.num_vcpus, dest_ctx.is_64bit)
            dst_buf.buf.store(dst_buf.off, info[: min(len(info), dst_size)])
            if dst_size > len(info):
                dst_buf.buf.memset(dst_buf.off + len(info), 0, dst_size - len(info))
            dst_buf.off += dst_size
            count += 1
        read_unlock(self.ffa_ctx_list_rwlock)
        return ret, count if not ret else 0

    def ffa_handle_partition_info_get(self, d: Domain, regs: Regs) -> Regs:
        """Before 5c85600270 (and the cache): SPs live from the SPMC, then (VM-to-VM) the other
        VMs; w3 is the entry size for count requests too; the count never includes the
        caller; the RX address is read from the context after ``rx_lock`` was dropped."""
        ctx = d.tee
        assert ctx is not None
        ret = abi.FFA_RET_OK
        flags = regs[5] & abi.MASK32
        uuid = ffa_uuid_set(regs[1], regs[2], regs[3], regs[4])
        vm_count = sp_count = 0
        if ctx.guest_vers.read() == abi.FFA_VERSION_1_0:
            dst_size = FFA_PARTITION_INFO_1_0.size
        else:
            dst_size = FFA_PARTITION_INFO_1_1.size
        if flags:
            if (
                ctx.guest_vers.read() == abi.FFA_VERSION_1_0
                or flags != abi.FFA_PARTITION_INFO_GET_COUNT_FLAG
            ):
                ret = abi.FFA_RET_INVALID_PARAMETERS
            elif self.ffa_fw_supports_fid(abi.FFA_PARTITION_INFO_GET):
                ret, sp_count = self.ffa_get_sp_count(uuid)
            if not ret:
                vm_count = self.get_ffa_vm_count() - 1  # the caller is never counted
        else:
            ret, _, _ = self.ffa_rx_acquire(ctx)  # the seed's returns only the status
            if ret == abi.FFA_RET_OK:
                # ctx->rx and page_count read with no lock held: an unmap may clear them.
                rx = ctx.rx.get()
                end_buf = ctx.page_count * FFA_PAGE_SIZE
                dst_buf = Cursor(rx or MappedBuf.null(self.machine, end_buf, "ctx->rx"))
                if end_buf <= 0 or end_buf < dst_size:
                    ret = abi.FFA_RET_INVALID_PARAMETERS
                elif self.ffa_fw_supports_fid(abi.FFA_PARTITION_INFO_GET):
                    ret, sp_count = self.ffa_get_sp_partinfo(uuid, dst_buf, end_buf, dst_size)
                    dst_buf.off += sp_count * dst_size
                if not ret and self.CONFIG_FFA_VM_TO_VM:
                    ret, vm_count = self.ffa_get_vm_partinfo(d, uuid, 0, dst_buf, end_buf, dst_size)
                if ret:  # out_rx_release:
                    self.ffa_rx_release(ctx)
        if ret:  # out:
            return ffa_set_regs_error(ret)
        return ffa_set_regs_success(sp_count + vm_count, dst_size)

    def uninit_subscribers(self) -> None:
        self.subscr_vm_created = []
        self.subscr_vm_destroyed = []

    def init_subscribers(self, buf: MappedBuf, count: int, fpi_size: int) -> bool:
        """Build the VM_CREATED and VM_DESTROYED subscriber arrays from the entries the SPMC
        wrote in Xen's RX (SPs following the bit-15 convention only). Entries must be 24 bytes
        or more, with no upper bound: ``count * fpi_size`` may run past Xen's one-page RX."""
        if fpi_size < FFA_PARTITION_INFO_1_1.size:
            self.printk(f"partition info size invalid: {fpi_size}")
            return False
        created = destroyed = 0
        for n in range(count):
            ep = buf.u16(n * fpi_size)
            if not FFA_ID_IS_SECURE(ep):
                self.printk(f"Secure partition with id {ep:#06x} cannot be used")
                continue
            props = buf.u32(n * fpi_size + 4)
            created += bool(props & abi.FFA_PART_PROP_NOTIF_CREATED)
            destroyed += bool(props & abi.FFA_PART_PROP_NOTIF_DESTROYED)
        ok_created = not created or xmalloc(self.machine, "xzalloc_array", "init_subscribers")
        ok_destroyed = not destroyed or xmalloc(self.machine, "xzalloc_array", "init_subscribers")
        if not ok_created or not ok_destroyed:
            self.printk("Failed to allocate subscription lists")
            self.uninit_subscribers()
            return False
        self.subscr_vm_created = []
        self.subscr_vm_destroyed = []
        for n in range(count):
            ep = buf.u16(n * fpi_size)
            if FFA_ID_IS_SECURE(ep):
                if buf.u32(n * fpi_size + 4) & abi.FFA_PART_PROP_NOTIF_CREATED:
                    self.subscr_vm_created.append(buf.u16(n * fpi_size))
                if buf.u32(n * fpi_size + 4) & abi.FFA_PART_PROP_NOTIF_DESTROYED:
                    self.subscr_vm_destroyed.append(buf.u16(n * fpi_size))
        return True

    def ffa_partinfo_init(self) -> bool:
        """Before cca899b380/71518be79d: build the subscriber arrays from one
        FFA_PARTITION_INFO_GET at boot; the RX is released whatever happened (defect 3)."""
        if not self.ffa_fw_supports_fid(abi.FFA_PARTITION_INFO_GET) or not self.ffa_fw_supports_fid(
            abi.FFA_MSG_SEND_DIRECT_REQ_32
        ):
            return False
        spmc_rx = self.ffa_rxtx_spmc_rx_acquire()
        if spmc_rx is None:
            return False
        ret = False
        e, count, fpi_size = self.ffa_partition_info_get(abi.NIL_UUID, 0)
        if e:
            self.printk(f"Failed to get list of SPs: {e}")
        elif count >= FFA_MAX_NUM_SP:
            self.printk(f"More SPs than the maximum supported: {count} - {FFA_MAX_NUM_SP}")
        else:
            ret = self.init_subscribers(spmc_rx, count, fpi_size)
        self.ffa_rxtx_spmc_rx_release(True)  # out:
        return ret

    def is_in_subscr_list(self, subscr: list[int], start: int, end: int, sp_id: int) -> bool:
        return sp_id in subscr[start:end]

    def vm_destroy_bitmap_init(self, ctx: FfaCtx, first_unnotified: int) -> None:
        """Which SPs get VM_DESTROYED: every destroyed-subscriber, minus those also subscribed
        to VM_CREATED at or after the first one that was not told of the creation."""
        bitmap = ctx.vm_destroy_bitmap
        assert bitmap is not None
        for n, sp_id in enumerate(self.subscr_vm_destroyed):
            if self.is_in_subscr_list(
                self.subscr_vm_created, first_unnotified, len(self.subscr_vm_created), sp_id
            ):
                continue
            bitmap[n] = True

    def ffa_partinfo_domain_init(self, d: Domain) -> int:
        """Before 71518be79d: tell each VM_CREATED subscriber in order; the bitmap is allocated
        even when no SP subscribes (``xzalloc_array`` of 0 longs is not NULL)."""
        ctx = d.tee
        assert ctx is not None
        if not self.ffa_fw_supports_fid(abi.FFA_MSG_SEND_DIRECT_REQ_32):
            return 0
        # BITS_TO_LONGS(0) longs: Xen's allocator returns ZERO_BLOCK_PTR, which cannot fail.
        if self.subscr_vm_destroyed and not xmalloc(
            self.machine, "xzalloc_array", "ffa_partinfo_domain_init"
        ):
            return -ENOMEM
        ctx.vm_destroy_bitmap = [False] * len(self.subscr_vm_destroyed)
        n = 0
        while n < len(self.subscr_vm_created):
            sp_id = self.subscr_vm_created[n]
            res = self.ffa_direct_req_send_vm(sp_id, ffa_get_vm_id(d), abi.FFA_MSG_SEND_VM_CREATED)
            if res:
                self.printk(
                    f"Failed to report creation of vm_id {ffa_get_vm_id(d)} to {sp_id}: res {res}"
                )
                break
            n += 1
        self.vm_destroy_bitmap_init(ctx, n)
        if n != len(self.subscr_vm_created):
            return -EIO
        return 0

    def ffa_partinfo_domain_destroy(self, d: Domain) -> bool:
        """Before 71518be79d: VM_DESTROYED to each subscriber still due, from the array."""
        ctx = d.tee
        assert ctx is not None
        bitmap = ctx.vm_destroy_bitmap
        if bitmap is None:
            return True
        for n, sp_id in enumerate(self.subscr_vm_destroyed):
            if not bitmap[n]:
                continue
            res = self.ffa_direct_req_send_vm(
                sp_id, ffa_get_vm_id(d), abi.FFA_MSG_SEND_VM_DESTROYED
            )
            if res:
                self.printk(f"Failed to report destruction of vm_id {ffa_get_vm_id(d)}: {res}")
            if res not in (abi.FFA_RET_INTERRUPTED, abi.FFA_RET_RETRY):
                bitmap[n] = False
        if not any(bitmap):
            ctx.vm_destroy_bitmap = None
        return ctx.vm_destroy_bitmap is None

    # -- ffa_shm.c --------------------------------------------------------------------------------
    def ffa_mem_share(
        self, tot_len: int, frag_len: int, addr: int, pg_count: int
    ) -> tuple[int, int]:
        """The seed's SMC wrapper (01c79ad9c6 renamed it ``ffa_spmc_share``):
        FFA_MEM_SHARE_64 of the descriptor in Xen's TX, ``(ret, handle)``; a FRAG_RX reply's
        positive offset is returned as if it were an error code."""
        resp = self.smc(abi.FFA_MEM_SHARE_64, tot_len, frag_len, addr, pg_count)
        x0 = resp[0]
        if x0 == abi.FFA_ERROR:
            if resp[2]:
                return abi.to_s32(resp[2]), 0
            return abi.FFA_RET_NOT_SUPPORTED, 0
        if x0 == abi.FFA_SUCCESS_32:
            return abi.FFA_RET_OK, abi.make_handle(resp[2], resp[3])
        if x0 == abi.FFA_MEM_FRAG_RX:
            handle = abi.make_handle(resp[1], resp[2])
            if resp[3] > INT32_MAX:
                return abi.FFA_RET_ABORTED, handle
            return resp[3] & INT32_MAX, handle
        return abi.FFA_RET_NOT_SUPPORTED, 0

    def ffa_mem_reclaim(self, handle_lo: int, handle_hi: int, flags: int) -> int:
        """The seed's SMC wrapper (01c79ad9c6 made it ``ffa_spmc_reclaim(shm, flags)``)."""
        if not self.ffa_fw_supports_fid(abi.FFA_MEM_RECLAIM):
            return abi.FFA_RET_NOT_SUPPORTED
        return self.ffa_simple_call(abi.FFA_MEM_RECLAIM, handle_lo, handle_hi, flags, 0)

    def ffa_handle_mem_reclaim(self, d: Domain, handle: int, flags: int) -> int:
        """Before 01c79ad9c6: the handle is split for ``ffa_mem_reclaim``."""
        ctx = d.tee
        assert ctx is not None
        if not self.ffa_fw_supports_fid(abi.FFA_MEM_RECLAIM):
            return abi.FFA_RET_NOT_SUPPORTED
        spin_lock(ctx.lock)
        shm = self.find_shm_mem(ctx, handle)
        if shm is not None:
            ctx.shm_list.set([s for s in ctx.shm_list.get() if s is not shm])
        spin_unlock(ctx.lock)
        if shm is None:
            return abi.FFA_RET_INVALID_PARAMETERS
        ret = self.ffa_mem_reclaim(abi.handle_lo(handle), abi.handle_hi(handle), flags)
        if ret:
            spin_lock(ctx.lock)
            ctx.shm_list.set([*ctx.shm_list.get(), shm])
            spin_unlock(ctx.lock)
        else:
            self.free_ffa_shm_mem(d, shm)
        return ret

    def ffa_shm_domain_destroy(self, d: Domain) -> bool:
        """Before 01c79ad9c6: each handle is split for ``ffa_mem_reclaim``."""
        ctx = d.tee
        assert ctx is not None
        for shm in list(ctx.shm_list.value):
            res = self.ffa_mem_reclaim(abi.handle_lo(shm.handle), abi.handle_hi(shm.handle), 0)
            if res == abi.FFA_RET_OK:
                ctx.shm_list.value = [s for s in ctx.shm_list.value if s is not shm]
                self.free_ffa_shm_mem(d, shm)
            elif res == abi.FFA_RET_DENIED:
                self.printk(f"{d}: Failed to reclaim handle {shm.handle:#x} : {res}")
            else:
                self.printk(f"{d}: Permanent failure to reclaim handle {shm.handle:#x} : {res}")
                ctx.shm_list.value = [s for s in ctx.shm_list.value if s is not shm]
                self.leaked_shms.append(shm)
        return not ctx.shm_count.value

    def get_shm_pages(
        self, d: Domain, shm: FfaShmMem, tx: MappedBuf, range_off: int, range_count: int
    ) -> int:
        """Before 01c79ad9c6: no alignment or overflow check, the address is truncated to a
        frame number."""
        for n in range(range_count):
            page_count = tx.u32(range_off + 16 * n + 8)
            addr = tx.u64(range_off + 16 * n)
            for m in range(page_count):
                if len(shm.pages) >= shm.page_count:
                    return abi.FFA_RET_INVALID_PARAMETERS
                gfn = ((addr + m * FFA_PAGE_SIZE) & abi.MASK64) >> 12
                e = get_page_from_gfn(d.p2m, gfn)
                if e is None:
                    return abi.FFA_RET_DENIED
                shm.pages.append(e[0])
                if e[1] is not P2MType.ram_rw:
                    return abi.FFA_RET_DENIED
        if len(shm.pages) < shm.page_count:
            return abi.FFA_RET_INVALID_PARAMETERS
        return abi.FFA_RET_OK

    def alloc_ffa_shm_mem(self, d: Domain, page_count: int) -> FfaShmMem | None:
        """Before 01c79ad9c6: ``page_count >= FFA_MAX_SHM_PAGE_COUNT`` is refused (255 pages
        at most)."""
        ctx = d.tee
        assert ctx is not None
        if page_count >= FFA_MAX_SHM_PAGE_COUNT:
            return None
        if not self.inc_ctx_shm_count(d, ctx):
            return None
        if not xmalloc(self.machine, "xzalloc_flex_struct", "alloc_ffa_shm_mem"):
            self.dec_ctx_shm_count(d, ctx)
            return None
        return FfaShmMem(sender_id=0, ep_id=0, page_count=page_count)

    def share_shm(self, shm: FfaShmMem, ffa_vers: int) -> int:
        """Before a90376c6ad: v1.1 EMADs only (the seed's takes no version, ignored here)."""
        ASSERT(shm.page_count, "shm->page_count")
        buf = self.ffa_rxtx_spmc_tx_acquire()
        if buf is None:
            return abi.FFA_RET_NOT_SUPPORTED
        ret, tot_len = write_share_descriptor_1_1(buf, shm)
        if not ret:
            ret, shm.handle = self.ffa_mem_share(tot_len, tot_len, 0, 0)
        self.ffa_rxtx_spmc_tx_release()  # out:
        return ret

    def read_mem_transaction(
        self, ffa_vers: int, buf: MappedBuf, blen: int
    ) -> tuple[int, FfaMemTransactionInt]:
        """Before 01c79ad9c6: no EMAD-size or alignment check."""
        trans = FfaMemTransactionInt()
        if ffa_vers >= abi.FFA_VERSION_1_1:
            if blen < FFA_MEM_TRANSACTION_1_1.size:
                return abi.FFA_RET_INVALID_PARAMETERS, trans
            f = _T11
            trans.sender_id = load_field(buf, 0, f["sender_id"])
            mem_reg_attr = load_field(buf, 0, f["mem_reg_attr"])
            flags = load_field(buf, 0, f["flags"])
            trans.handle = load_field(buf, 0, f["handle"])
            trans.tag = load_field(buf, 0, f["tag"])
            count = load_field(buf, 0, f["mem_access_count"])
            size = load_field(buf, 0, f["mem_access_size"])
            offs = load_field(buf, 0, f["mem_access_offs"])
        else:
            if blen < FFA_MEM_TRANSACTION_1_0.size:
                return abi.FFA_RET_INVALID_PARAMETERS, trans
            f = _T10
            trans.sender_id = load_field(buf, 0, f["sender_id"])
            mem_reg_attr = load_field(buf, 0, f["mem_reg_attr"])
            flags = load_field(buf, 0, f["flags"])
            trans.handle = load_field(buf, 0, f["handle"])
            trans.tag = load_field(buf, 0, f["tag"])
            count = load_field(buf, 0, f["mem_access_count"])
            size = FFA_MEM_ACCESS.size
            offs = FFA_MEM_TRANSACTION_1_0.size
        if (
            mem_reg_attr > UINT8_MAX
            or flags > UINT8_MAX
            or size > UINT8_MAX
            or count > UINT8_MAX
            or offs > UINT16_MAX
        ):
            return abi.FFA_RET_INVALID_PARAMETERS, trans
        if size * count + offs > blen:
            return abi.FFA_RET_INVALID_PARAMETERS, trans
        trans.mem_reg_attr = mem_reg_attr
        trans.flags = flags
        trans.mem_access_size = size
        trans.mem_access_count = count
        trans.mem_access_offs = offs
        return abi.FFA_RET_OK, trans

    def ffa_handle_mem_share(self, d: Domain, regs: Regs) -> Regs:
        """Before 3528248b8c (no ``ffa_tx_acquire``: a trylock, then ``ctx->tx`` and
        ``page_count`` as they are), edf036fac2 (no NS check), 01c79ad9c6 (no EMAD-size
        check) and a90376c6ad (no impdef): each EMAD field is read just before its check, so
        with an EMAD declared 0 bytes long at the end of a full TX page the receiver ID is read
        past Xen's mapping of it."""
        tot_len = regs[1] & abi.MASK32
        frag_len = regs[2] & abi.MASK32
        addr = regs[3]
        ctx = d.tee
        assert ctx is not None
        shm: FfaShmMem | None = None
        handle = 0
        ret = abi.FFA_RET_DENIED
        if not self.ffa_fw_supports_fid(abi.FFA_MEM_SHARE_64):
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        if addr:
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        if frag_len > tot_len:
            return ffa_set_regs_error(abi.FFA_RET_INVALID_PARAMETERS)
        if frag_len != tot_len:
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        if not spin_trylock(ctx.tx_lock):
            return ffa_set_regs_error(abi.FFA_RET_BUSY)
        goto = ""
        trans = FfaMemTransactionInt()
        dst_id = region_offs = 0
        tx = ctx.tx.get()
        if frag_len > ctx.page_count * FFA_PAGE_SIZE:
            goto = "out_unlock"  # ret is still DENIED
        if not goto:
            # With nothing mapped ctx->tx is NULL, but only an empty fragment gets here, and
            # read_mem_transaction rejects it before reading anything.
            ret, trans = self.read_mem_transaction(
                ctx.guest_vers.read(), tx or MappedBuf.null(self.machine, 0, "ctx->tx"), frag_len
            )
            if ret:
                goto = "out_unlock"
        if not goto:
            assert tx is not None
            if trans.mem_reg_attr != abi.FFA_NORMAL_MEM_REG_ATTR or trans.mem_access_count != 1:
                ret, goto = abi.FFA_RET_NOT_SUPPORTED, "out_unlock"
            elif trans.sender_id != ffa_get_vm_id(d):
                ret, goto = abi.FFA_RET_INVALID_PARAMETERS, "out_unlock"
            elif trans.mem_access_offs + trans.mem_access_size > frag_len:
                goto = "out_unlock"  # ret is 0 (unreachable: read_mem_transaction checked it)
        if not goto:
            assert tx is not None
            mem_access = trans.mem_access_offs
            dst_id = tx.u16(mem_access)
            if not FFA_ID_IS_SECURE(dst_id) or tx.u8(mem_access + 2) != abi.FFA_MEM_ACC_RW:
                ret, goto = abi.FFA_RET_NOT_SUPPORTED, "out_unlock"
            else:
                region_offs = tx.u32(mem_access + 4)
                if FFA_MEM_REGION.size + region_offs > frag_len:
                    ret, goto = abi.FFA_RET_NOT_SUPPORTED, "out_unlock"
        if not goto:
            assert tx is not None
            range_count = tx.u32(region_offs + 4)
            page_count = tx.u32(region_offs)
            if not page_count:
                ret, goto = abi.FFA_RET_INVALID_PARAMETERS, "out_unlock"
            else:
                shm = self.alloc_ffa_shm_mem(d, page_count)
                if shm is None:
                    ret, goto = abi.FFA_RET_NO_MEMORY, "out_unlock"
                else:
                    shm.sender_id = trans.sender_id
                    shm.ep_id = dst_id
                    if (
                        FFA_MEM_REGION.size + region_offs + range_count * FFA_ADDRESS_RANGE.size
                        > frag_len
                    ):
                        ret = abi.FFA_RET_INVALID_PARAMETERS
                    else:
                        ret = self.get_shm_pages(
                            d, shm, tx, region_offs + FFA_MEM_REGION.size, range_count
                        )
                    if not ret:
                        ret = self.share_shm(shm, abi.FFA_VERSION_1_1)
                    if not ret:
                        spin_lock(ctx.lock)
                        ctx.shm_list.set([*ctx.shm_list.get(), shm])
                        spin_unlock(ctx.lock)
                        handle = shm.handle
        if ret and goto != "out_unlock":  # out:
            self.free_ffa_shm_mem(d, shm)
        spin_unlock(ctx.tx_lock)  # out_unlock:
        if ret == 0:  # out_set_ret:
            return ffa_set_regs_success(abi.handle_lo(handle), abi.handle_hi(handle))
        return ffa_set_regs_error(ret)

    # -- ffa_msg.c --------------------------------------------------------------------------------
    def ffa_handle_msg_send_direct_req(self, d: Domain, regs: Regs, fid: int) -> Regs:
        """Before 7a90dad8de and 00c4db5731: no check that the destination differs from the
        caller; errors go through the request's mask, so an SMC64 caller gets the code
        sign-extended to 64 bits in x2; an unexpected reply is ABORTED with w1 = src/dst."""
        mask = abi.MASK64 if abi.is_64bit_fid(fid) else abi.MASK32
        if not self.ffa_fw_supports_fid(fid):
            return ffa_set_regs(abi.FFA_ERROR, 0, abi.FFA_RET_NOT_SUPPORTED & mask)
        src_dst = regs[1] & abi.MASK32
        if (src_dst >> 16) != ffa_get_vm_id(d):
            return ffa_set_regs(abi.FFA_ERROR, 0, abi.FFA_RET_INVALID_PARAMETERS & mask)
        if not FFA_ID_IS_SECURE(src_dst & 0xFFFF):
            return ffa_set_regs(abi.FFA_ERROR, 0, abi.FFA_RET_NOT_SUPPORTED & mask)
        resp = self.smc(fid, src_dst, *(r & mask for r in regs[2:8]))
        if resp[0] not in SEED_DIRECT_PASS:
            return ffa_set_regs(abi.FFA_ERROR, src_dst & mask, abi.FFA_RET_ABORTED & mask)
        return ffa_set_regs(resp[0], *(r & mask for r in resp[1:8]))

    def ffa_msg_send2_vm(
        self, src_d: Domain, dst_id: int, src_buf: MappedBuf, src_msg: FfaPartMsgRxtx
    ) -> int:
        """Before 4ed7f66fab (its own lookup) and e040b94d0f (a 1.1 header for the
        receiver); the receiver's RX address and size come from its context, read after its
        ``rx_lock`` was dropped."""
        if dst_id == 0:
            return abi.FFA_RET_INVALID_PARAMETERS  # the hypervisor
        dst_d = self.rcu_lock_live_remote_domain_by_id(src_d, dst_id)
        if dst_d is None:
            return abi.FFA_RET_INVALID_PARAMETERS  # also: dst is not src
        dst_ctx = dst_d.tee
        if dst_ctx is None or not dst_ctx.guest_vers.read():
            return abi.FFA_RET_INVALID_PARAMETERS
        ret, _, _ = self.ffa_rx_acquire(dst_ctx)
        if not ret:
            if dst_ctx.page_count * FFA_PAGE_SIZE - FFA_PART_MSG_RXTX_1_1.size < src_msg.msg_size:
                ret = abi.FFA_RET_NO_MEMORY
                self.ffa_rx_release(dst_ctx)
            else:
                # dst_ctx->rx, read after rx_lock was dropped: an unmap may have cleared it.
                dst = dst_ctx.rx.get() or MappedBuf.null(self.machine, 0, "dst_ctx->rx")
                dst.store(0, struct.pack("<I", 0))
                dst.store(4, struct.pack("<I", 0))
                dst.store(8, struct.pack("<I", FFA_PART_MSG_RXTX_1_1.size))
                dst.store(12, struct.pack("<I", src_msg.send_recv_id))
                dst.store(16, struct.pack("<I", src_msg.msg_size))
                size = src_msg.msg_size
                dst.store(FFA_PART_MSG_RXTX_1_1.size, src_buf.load(src_msg.msg_offset, size))
        if not ret:  # out_unlock:
            self.ffa_raise_rx_buffer_full(dst_d)
        return ret

    def ffa_handle_msg_send2(self, d: Domain, regs: Regs) -> int:
        """Before 3528248b8c: a trylock then ``memcpy`` from ``ctx->tx`` without checking that
        a TX is mapped (a NULL dereference: a hypervisor crash); before e040b94d0f: the 1.1
        header; before e70117a53f: forwarded to an SP without RX_ACQUIRE; before c447b7308b:
        no ``barrier()`` (the header's fields are re-read in ``ffa_msg_send2_vm``)."""
        src_ctx = d.tee
        assert src_ctx is not None
        if not spin_trylock(src_ctx.tx_lock):
            return abi.FFA_RET_BUSY
        tx_size = src_ctx.page_count * FFA_PAGE_SIZE
        tx = src_ctx.tx.get() or MappedBuf.null(self.machine, tx_size, "ctx->tx")
        src_msg = FfaPartMsgRxtx.copy(tx, FFA_PART_MSG_RXTX_1_1.size)
        src_id = src_msg.send_recv_id >> 16
        dst_id = src_msg.send_recv_id & 0xFFFF
        if src_id != ffa_get_vm_id(d) or (
            src_msg.msg_offset < FFA_PART_MSG_RXTX_1_1.size
            or src_msg.msg_size == 0
            or src_msg.msg_offset > tx_size
            or src_msg.msg_size > tx_size - src_msg.msg_offset
        ):
            ret = abi.FFA_RET_INVALID_PARAMETERS
        elif FFA_ID_IS_SECURE(dst_id):
            if not self.ffa_fw_supports_fid(abi.FFA_MSG_SEND2):
                ret = abi.FFA_RET_NOT_SUPPORTED
            else:
                ret = self.ffa_simple_call(abi.FFA_MSG_SEND2, ffa_get_vm_id(d) << 16, 0, 0, 0)
        elif self.CONFIG_FFA_VM_TO_VM:
            ret = self.ffa_msg_send2_vm(d, dst_id, tx, ReloadedPartMsg(tx, src_msg))
        else:
            ret = abi.FFA_RET_INVALID_PARAMETERS
        spin_unlock(src_ctx.tx_lock)  # out:
        return ret

    # -- ffa_notif.c ------------------------------------------------------------------------------
    def ffa_handle_notification_set(self, d: Domain, regs: Regs) -> int:
        """Before 00c4db5731: tests the sender's halfword (the VM itself) for "secure", so SET
        to an SP is never forwarded."""
        src_dst = regs[1] & abi.MASK32
        flags = regs[2] & abi.MASK32
        bitmap_lo = regs[3] & abi.MASK32
        bitmap_hi = regs[4] & abi.MASK32
        if (src_dst >> 16) != ffa_get_vm_id(d):
            return abi.FFA_RET_INVALID_PARAMETERS
        if FFA_ID_IS_SECURE(src_dst >> 16) and self.fw_notif_enabled:
            return self.ffa_simple_call(
                abi.FFA_NOTIFICATION_SET, src_dst, flags, bitmap_lo, bitmap_hi
            )
        return abi.FFA_RET_NOT_SUPPORTED
