"""Memory sharing: FFA_MEM_SHARE and FFA_MEM_RECLAIM. Mirrors ffa_shm.c (upstream HEAD,
c447b7308b).

A guest's share descriptor is read from its TX buffer field by field, as the C reads it
(``read_mem_transaction`` copies the header fields into ``struct ffa_mem_transaction_int``, then
``ACCESS_ONCE`` loads of the EMAD, the composite and each range), checked, its pages looked up and
referenced, and a fresh descriptor with physical addresses (physically contiguous pages merged
into one range) is written into Xen's TX buffer for the SPMC.

Locks: ``ctx.tx_lock`` (trylock, through ``ffa_tx_acquire``) is outermost; the SPMC TX buffer
lock (``share_shm``) and ``ctx.lock`` (the share list and count) are each taken inside it, never
both at once. Holding ``tx_lock`` around ``share_shm`` lets one VM's share delay another's: a
known weakness of Xen's design, kept.

Upstream defects kept here (``reference`` fixes them): a fragment longer than the TX buffer, and
an EMAD that does not fit the fragment (unreachable after ``read_mem_transaction``), leave with
``ret`` still 0: FFA_SUCCESS with handle 0, nothing shared (patch 06); a FRAG_RX reply from the
SPMC reaches the guest as a positive "error" code. Kept as in Xen: the guest's tag and flags are
not forwarded.

Not modelled: fragments (one fragment only, as Xen), lend, donate, dynamically allocated
buffers (Xen rejects them with NOT_SUPPORTED).
"""

from __future__ import annotations

import struct

from .. import abi
from ..machine import (
    ASSERT,
    Machine,
    P2MType,
    SmcConduit,
    get_page_from_gfn,
    put_page,
    spin_lock,
    spin_unlock,
)
from ..machine.xmalloc import xmalloc
from .ffa_partinfo import FfaPartinfo
from .ffa_private import (
    FFA_ADDRESS_RANGE,
    FFA_ID_IS_SECURE,
    FFA_MAX_SHM_COUNT,
    FFA_MAX_SHM_PAGE_COUNT,
    FFA_MEM_REGION,
    FFA_PAGE_SIZE,
    FFA_RXTX_PAGE_COUNT,
    Domain,
    FfaCtx,
    FfaShmMem,
    MappedBuf,
    Regs,
    ffa_get_vm_id,
    ffa_safe_addr_add,
    ffa_set_regs_error,
    ffa_set_regs_success,
)

# struct ffa_mem_access_perm + region_offs + reserved: the 16-byte (v1.0/v1.1) EMAD.
FFA_MEM_ACCESS = struct.Struct("<HBBIQ")
# struct ffa_mem_access_1_2: perm, region_offs, impdef[16], reserved[8] (32 bytes).
FFA_MEM_ACCESS_1_2 = struct.Struct("<HBBI16s8s")
# struct ffa_mem_transaction_1_0 header (32 bytes; the EMADs follow at 32).
FFA_MEM_TRANSACTION_1_0 = struct.Struct("<HBBIQQII")
# struct ffa_mem_transaction_1_1 header (48 bytes).
FFA_MEM_TRANSACTION_1_1 = struct.Struct("<HHIQQIII12s")
assert FFA_MEM_ACCESS.size == 16 and FFA_MEM_ACCESS_1_2.size == 32
assert FFA_MEM_TRANSACTION_1_0.size == 32 and FFA_MEM_TRANSACTION_1_1.size == 48

INT32_MAX = 0x7FFFFFFF
UINT8_MAX = 0xFF
UINT16_MAX = 0xFFFF

# Field offsets the C reads, by struct.
_T11 = {"sender_id": (0, 2), "mem_reg_attr": (2, 2), "flags": (4, 4), "handle": (8, 8),
        "tag": (16, 8), "mem_access_size": (24, 4), "mem_access_count": (28, 4),
        "mem_access_offs": (32, 4)}  # fmt: skip
_T10 = {"sender_id": (0, 2), "mem_reg_attr": (2, 1), "flags": (4, 4), "handle": (8, 8),
        "tag": (16, 8), "mem_access_count": (28, 4)}  # fmt: skip


def load_field(buf: MappedBuf, base: int, field: tuple[int, int]) -> int:
    """One C field read (or ``ACCESS_ONCE``) of a little-endian integer field."""
    off, size = field
    return int.from_bytes(buf.load(base + off, size), "little")


class FfaMemTransactionInt:
    """``struct ffa_mem_transaction_int``: the parts of a 1.0 or 1.1 header Xen uses, copied
    out of guest memory once (free to change: not ABI)."""

    __slots__ = (
        "flags",
        "handle",
        "mem_access_count",
        "mem_access_offs",
        "mem_access_size",
        "mem_reg_attr",
        "sender_id",
        "tag",
    )

    def __init__(self) -> None:
        self.sender_id = 0
        self.mem_reg_attr = 0
        self.flags = 0
        self.mem_access_size = 0
        self.mem_access_count = 0
        self.mem_access_offs = 0
        self.handle = 0
        self.tag = 0


def init_range(buf: MappedBuf, off: int, pa: int) -> None:
    """``init_range()``: memset the range at ``off`` of Xen's TX, then its address and count."""
    buf.memset(off, 0, FFA_ADDRESS_RANGE.size)
    buf.store(off, struct.pack("<Q", pa))
    buf.store(off + 8, struct.pack("<I", 1))


class FfaShm(FfaPartinfo):
    """ffa_shm.c: the functions of that file, as methods of the mediator."""

    def __init__(self, machine: Machine, conduit: SmcConduit, vm_to_vm: bool = False) -> None:
        super().__init__(machine, conduit, vm_to_vm)
        # Shares dropped after a permanent reclaim failure, their page references leaked on
        # purpose (what Xen's xfree() leaves behind); the audit reports them.
        self.leaked_shms: list[FfaShmMem] = []

    # -- SMC wrappers -----------------------------------------------------------------------------
    def ffa_spmc_share(self, tot_len: int) -> tuple[int, int]:
        """FFA_MEM_SHARE_64 of the descriptor in Xen's TX buffer: ``(ret, handle)``. A FRAG_RX
        reply (the SPMC wants more of a descriptor Xen sent whole) returns its positive offset
        as if it were an error code."""
        resp = self.smc(abi.FFA_MEM_SHARE_64, tot_len, tot_len, 0, 0)
        x0 = resp[0]
        if x0 == abi.FFA_ERROR:
            if resp[2]:  # the whole register is tested, its low 32 bits returned
                return abi.to_s32(resp[2]), 0
            return abi.FFA_RET_NOT_SUPPORTED, 0
        if x0 == abi.FFA_SUCCESS_32:
            return abi.FFA_RET_OK, abi.make_handle(resp[2], resp[3])
        if x0 == abi.FFA_MEM_FRAG_RX:
            handle = abi.make_handle(resp[1], resp[2])
            if resp[3] > INT32_MAX:  # impossible value
                return abi.FFA_RET_ABORTED, handle
            return resp[3] & INT32_MAX, handle
        return abi.FFA_RET_NOT_SUPPORTED, 0

    def ffa_spmc_reclaim(self, shm: FfaShmMem, flags: int) -> int:
        if not self.ffa_fw_supports_fid(abi.FFA_MEM_RECLAIM):
            return abi.FFA_RET_NOT_SUPPORTED
        return self.ffa_simple_call(
            abi.FFA_MEM_RECLAIM, abi.handle_lo(shm.handle), abi.handle_hi(shm.handle), flags, 0
        )

    # -- pages ------------------------------------------------------------------------------------
    def get_shm_pages(
        self, d: Domain, shm: FfaShmMem, tx: MappedBuf, range_off: int, range_count: int
    ) -> int:
        """Reference every page of the guest's ranges (the array at ``range_off`` of its TX,
        each range's page count then address read with ``ACCESS_ONCE``); the caller must
        ``put_shm_pages`` even on failure."""
        for n in range(range_count):
            page_count = tx.u32(range_off + 16 * n + 8)
            addr = tx.u64(range_off + 16 * n)
            if addr % FFA_PAGE_SIZE:
                return abi.FFA_RET_INVALID_PARAMETERS
            for m in range(page_count):
                if len(shm.pages) >= shm.page_count:
                    return abi.FFA_RET_INVALID_PARAMETERS  # range overflow
                if not ffa_safe_addr_add(addr, m):
                    return abi.FFA_RET_INVALID_PARAMETERS
                gaddr = addr + m * FFA_PAGE_SIZE
                e = get_page_from_gfn(d.p2m, gaddr >> 12)
                if e is None:
                    return abi.FFA_RET_DENIED
                shm.pages.append(e[0])
                if e[1] is not P2MType.ram_rw:
                    return abi.FFA_RET_DENIED  # only normal RW RAM for now
        if len(shm.pages) < shm.page_count:
            return abi.FFA_RET_INVALID_PARAMETERS  # the ranges must add up
        return abi.FFA_RET_OK

    def put_shm_pages(self, shm: FfaShmMem) -> None:
        for pg in shm.pages:
            put_page(pg)
        shm.pages = []

    def inc_ctx_shm_count(self, d: Domain, ctx: FfaCtx) -> bool:
        """Count a new share; the first one takes a domain reference so that the domain
        outlives its shares (teardown must reclaim them)."""
        ret = False
        spin_lock(ctx.lock)
        count = ctx.shm_count.get()
        if count < FFA_MAX_SHM_COUNT:
            if not count:
                self.get_knownalive_domain(d)
            ctx.shm_count.set(count + 1)
            ret = True
        spin_unlock(ctx.lock)
        return ret

    def dec_ctx_shm_count(self, d: Domain, ctx: FfaCtx) -> None:
        spin_lock(ctx.lock)
        count = ctx.shm_count.get()
        ASSERT(count > 0, "ctx->shm_count > 0")
        ctx.shm_count.set(count - 1)
        drop_ref = count == 1
        spin_unlock(ctx.lock)
        if drop_ref:
            self.put_domain(d)

    def alloc_ffa_shm_mem(self, d: Domain, page_count: int) -> FfaShmMem | None:
        ctx = d.tee
        assert ctx is not None
        if page_count > FFA_MAX_SHM_PAGE_COUNT:
            return None
        if not self.inc_ctx_shm_count(d, ctx):
            return None
        if not xmalloc(self.machine, "xzalloc_flex_struct", "alloc_ffa_shm_mem"):
            self.dec_ctx_shm_count(d, ctx)
            return None
        return FfaShmMem(sender_id=0, ep_id=0, page_count=page_count)

    def free_ffa_shm_mem(self, d: Domain, shm: FfaShmMem | None) -> None:
        if shm is None:
            return
        ctx = d.tee
        assert ctx is not None
        self.dec_ctx_shm_count(d, ctx)
        self.put_shm_pages(shm)

    # -- building the SPMC's descriptor -----------------------------------------------------------
    def share_shm(self, shm: FfaShmMem, ffa_vers: int) -> int:
        """Write a v1.1 descriptor (a v1.2 EMAD when the SPMC speaks 1.2) for ``shm`` into Xen's
        TX buffer, field by field as the C does, and share it with the SPMC; sets
        ``shm.handle``."""
        max_frag_len = FFA_RXTX_PAGE_COUNT * FFA_PAGE_SIZE
        ASSERT(shm.page_count, "shm->page_count")
        buf = self.ffa_rxtx_spmc_tx_acquire()
        if buf is None:
            return abi.FFA_RET_NOT_SUPPORTED
        buf.memset(0, 0, FFA_MEM_TRANSACTION_1_1.size)
        buf.store(0, struct.pack("<H", shm.sender_id))
        buf.store(8, struct.pack("<Q", shm.handle))
        buf.store(2, struct.pack("<H", abi.FFA_NORMAL_MEM_REG_ATTR))
        buf.store(28, struct.pack("<I", 1))
        if ffa_vers >= abi.FFA_VERSION_1_2:
            mem_access_size = FFA_MEM_ACCESS_1_2.size
        else:
            mem_access_size = FFA_MEM_ACCESS.size
        mem_access_offs = FFA_MEM_TRANSACTION_1_1.size
        region_offs = mem_access_offs + mem_access_size
        buf.store(24, struct.pack("<I", mem_access_size))
        buf.store(32, struct.pack("<I", mem_access_offs))
        buf.memset(mem_access_offs, 0, mem_access_size)
        buf.store(mem_access_offs, struct.pack("<H", shm.ep_id))
        buf.store(mem_access_offs + 2, bytes([abi.FFA_MEM_ACC_RW]))
        buf.store(mem_access_offs + 4, struct.pack("<I", region_offs))
        if ffa_vers >= abi.FFA_VERSION_1_2:
            buf.store(mem_access_offs + 8, struct.pack("<QQ", *shm.impdef))
        buf.memset(region_offs, 0, FFA_MEM_REGION.size)
        buf.store(region_offs, struct.pack("<I", shm.page_count))
        # Physically contiguous pages make one range. Xen's own buffer is written with each
        # field's final value (the C counts and extends ranges in place with ++).
        ranges: list[list[int]] = []
        for pg in shm.pages:
            if ranges and ranges[-1][0] + ranges[-1][1] * FFA_PAGE_SIZE == pg.pa:
                ranges[-1][1] += 1
            else:
                ranges.append([pg.pa, 1])
        buf.store(region_offs + 4, struct.pack("<I", len(ranges)))
        tot_len = region_offs + FFA_MEM_REGION.size + len(ranges) * FFA_ADDRESS_RANGE.size
        if tot_len > max_frag_len:
            ret = abi.FFA_RET_NOT_SUPPORTED
        else:
            addr_range = region_offs + FFA_MEM_REGION.size
            for pa, count in ranges:
                init_range(buf, addr_range, pa)
                if count > 1:
                    buf.store(addr_range + 8, struct.pack("<I", count))
                addr_range += FFA_ADDRESS_RANGE.size
            ret, shm.handle = self.ffa_spmc_share(tot_len)
        self.ffa_rxtx_spmc_tx_release()  # out:
        return ret

    # -- reading the guest's descriptor -----------------------------------------------------------
    def read_mem_transaction(
        self, ffa_vers: int, buf: MappedBuf, blen: int
    ) -> tuple[int, FfaMemTransactionInt]:
        """Copy the 1.0 or 1.1 header out of the guest's TX, one field read each, then check
        the copy (the guest's descriptor is not read again after the ``barrier()``)."""
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
        # barrier(): "descr", shared with the guest, is not accessed again after this point.
        if (
            mem_reg_attr > UINT8_MAX
            or flags > UINT8_MAX
            or size > UINT8_MAX
            or count > UINT8_MAX
            or offs > UINT16_MAX
        ):
            return abi.FFA_RET_INVALID_PARAMETERS, trans
        if size * count + offs > blen:
            return abi.FFA_RET_INVALID_PARAMETERS, trans  # the EMAD array must fit
        if size < FFA_MEM_ACCESS.size:
            return abi.FFA_RET_INVALID_PARAMETERS, trans
        if offs & 0xF:
            return abi.FFA_RET_INVALID_PARAMETERS, trans
        trans.mem_reg_attr = mem_reg_attr
        trans.flags = flags
        trans.mem_access_size = size
        trans.mem_access_count = count
        trans.mem_access_offs = offs
        return abi.FFA_RET_OK, trans

    # -- guest FFA_MEM_SHARE ----------------------------------------------------------------------
    def ffa_handle_mem_share(self, d: Domain, regs: Regs) -> Regs:
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
            # Only descriptors in the RX/TX buffers, not in dynamically allocated memory.
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)
        if frag_len > tot_len:
            return ffa_set_regs_error(abi.FFA_RET_INVALID_PARAMETERS)
        if frag_len != tot_len:
            return ffa_set_regs_error(abi.FFA_RET_NOT_SUPPORTED)  # one fragment only
        ret, tx_buf, tx_size = self.ffa_tx_acquire(ctx)
        if ret != abi.FFA_RET_OK:
            return ffa_set_regs_error(ret)
        assert tx_buf is not None
        goto = ""
        trans = FfaMemTransactionInt()
        dst_id = region_offs = 0
        impdef = (0, 0)
        if frag_len > tx_size:
            goto = "out_unlock"  # ret is still 0 from ffa_tx_acquire: SUCCESS, handle 0
        if not goto:
            ffa_vers = ctx.guest_vers.read()
            ret, trans = self.read_mem_transaction(ffa_vers, tx_buf, frag_len)
            if ret:
                goto = "out_unlock"
        if not goto:
            if trans.mem_reg_attr & abi.FFA_MEM_ATTR_NS:
                ret, goto = abi.FFA_RET_INVALID_PARAMETERS, "out_unlock"
            elif trans.mem_reg_attr != abi.FFA_NORMAL_MEM_REG_ATTR:
                ret, goto = abi.FFA_RET_NOT_SUPPORTED, "out_unlock"
            elif trans.mem_access_count != 1:
                ret, goto = abi.FFA_RET_NOT_SUPPORTED, "out_unlock"  # one SP only
            elif trans.sender_id != ffa_get_vm_id(d) or trans.mem_access_size < FFA_MEM_ACCESS.size:
                ret, goto = abi.FFA_RET_INVALID_PARAMETERS, "out_unlock"
            elif trans.mem_access_offs + trans.mem_access_size > frag_len:
                goto = "out_unlock"  # ret is 0 here too (unreachable: checked above)
        if not goto:
            mem_access = trans.mem_access_offs
            dst_id = tx_buf.u16(mem_access)
            perm = tx_buf.u8(mem_access + 2)
            region_offs = tx_buf.u32(mem_access + 4)
            # A 1.2 EMAD carries an impdef value: the format follows the size, not the version.
            if trans.mem_access_size >= FFA_MEM_ACCESS_1_2.size:
                lo, hi = struct.unpack("<QQ", tx_buf.load(mem_access + 8, 16))
                impdef = (lo, hi)
            if not FFA_ID_IS_SECURE(dst_id):
                ret, goto = abi.FFA_RET_NOT_SUPPORTED, "out_unlock"  # no sharing with VMs
            elif perm != abi.FFA_MEM_ACC_RW or FFA_MEM_REGION.size + region_offs > frag_len:
                ret, goto = abi.FFA_RET_NOT_SUPPORTED, "out_unlock"
        if not goto:
            range_count = tx_buf.u32(region_offs + 4)
            page_count = tx_buf.u32(region_offs)
            if not page_count:
                ret, goto = abi.FFA_RET_INVALID_PARAMETERS, "out_unlock"
            else:
                shm = self.alloc_ffa_shm_mem(d, page_count)
                if shm is None:
                    ret, goto = abi.FFA_RET_NO_MEMORY, "out_unlock"
                else:
                    shm.sender_id = trans.sender_id
                    shm.ep_id = dst_id
                    shm.impdef = impdef
                    # The composite memory region descriptor must fit.
                    if (
                        FFA_MEM_REGION.size + region_offs + range_count * FFA_ADDRESS_RANGE.size
                        > frag_len
                    ):
                        ret = abi.FFA_RET_INVALID_PARAMETERS
                    else:
                        ret = self.get_shm_pages(
                            d, shm, tx_buf, region_offs + FFA_MEM_REGION.size, range_count
                        )
                    if not ret:
                        ret = self.share_shm(shm, self.ffa_fw_version)
                    if not ret:
                        spin_lock(ctx.lock)
                        ctx.shm_list.set([*ctx.shm_list.get(), shm])
                        spin_unlock(ctx.lock)
                        handle = shm.handle
        if ret and goto != "out_unlock":  # out:
            self.free_ffa_shm_mem(d, shm)
        self.ffa_tx_release(ctx)  # out_unlock:
        if ret == 0:  # out_set_ret:
            return ffa_set_regs_success(abi.handle_lo(handle), abi.handle_hi(handle))
        return ffa_set_regs_error(ret)

    # -- guest FFA_MEM_RECLAIM --------------------------------------------------------------------
    def find_shm_mem(self, ctx: FfaCtx, handle: int) -> FfaShmMem | None:
        """The caller's share with ``handle``. Call with ``ctx.lock`` held."""
        for shm in ctx.shm_list.get():
            if shm.handle == handle:
                return shm
        return None

    def ffa_handle_mem_reclaim(self, d: Domain, handle: int, flags: int) -> int:
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
        ret = self.ffa_spmc_reclaim(shm, flags & abi.MASK32)
        if ret:
            spin_lock(ctx.lock)
            ctx.shm_list.set([*ctx.shm_list.get(), shm])
            spin_unlock(ctx.lock)
        else:
            self.free_ffa_shm_mem(d, shm)
        return ret

    # -- teardown ---------------------------------------------------------------------------------
    def ffa_shm_domain_destroy(self, d: Domain) -> bool:
        """Reclaim every share of a dying domain; True when none is left.

        OK frees the share. DENIED is temporary (an SP still has it mapped): keep it and retry
        from the teardown timer. Any other error is taken as permanent: the share is dropped
        but its page references are leaked on purpose, so the pages can never be reused while
        an SP might still access them (the domain stays a zombie)."""
        ctx = d.tee
        assert ctx is not None
        # The domain is paused and dying: no vCPU can touch the list (Xen walks it unlocked).
        for shm in list(ctx.shm_list.value):
            res = self.ffa_spmc_reclaim(shm, 0)
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
