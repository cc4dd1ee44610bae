"""Memory sharing: FFA_MEM_SHARE and FFA_MEM_RECLAIM. Mirrors ffa_shm.c (HEAD).

A guest's share descriptor is read from its TX buffer once (:class:`GuestView`), checked, its
pages looked up and referenced, and a fresh descriptor with physical addresses (physically
contiguous pages merged into one range) is written into Xen's TX buffer for the SPMC.

Locks: ``ctx.tx_lock`` (trylock, through ``ffa_tx_acquire``) is outermost; the SPMC TX buffer
lock (``share_shm``) and ``ctx.lock`` (the share list and count) are each taken inside it, never
both at once. Holding ``tx_lock`` around ``share_shm`` lets one VM's share delay another's: a
known weakness of Xen's design, kept.

Reference fixes over HEAD: a fragment longer than the TX buffer is DENIED (HEAD answers SUCCESS
with handle 0 and shares nothing); a FRAG_RX reply from the SPMC is ABORTED (HEAD hands the
positive offset back as an "error" code). Kept as in Xen: the guest's tag and flags are not
forwarded.

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
    GuestView,
    Regs,
    ffa_get_vm_id,
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


def ffa_safe_addr_add(addr: int, pages: int) -> bool:
    """Whether ``addr + pages * 4K`` stays inside 64 bits."""
    return addr + pages * FFA_PAGE_SIZE <= abi.MASK64


class FfaShm(FfaPartinfo):
    """ffa_shm.c: the functions of that file, as methods of the mediator."""

    def __init__(self, machine: Machine, conduit: SmcConduit, vm_to_vm: bool = False) -> None:
        super().__init__(machine, conduit, vm_to_vm)
        # Shares dropped after a permanent reclaim failure, their page references leaked on
        # purpose (what Xen's xfree() leaves behind); the audit reports them.
        self.leaked_shms: list[FfaShmMem] = []

    # Pages a share may have: HEAD accepts up to 256 (01c79ad9c6); the seed stopped at 255.
    def shm_page_count_ok(self, page_count: int) -> bool:
        return page_count <= FFA_MAX_SHM_PAGE_COUNT

    # -- SMC wrappers -----------------------------------------------------------------------------
    def ffa_spmc_share(self, tot_len: int) -> tuple[int, int]:
        """FFA_MEM_SHARE_64 of the descriptor in Xen's TX buffer: ``(ret, handle)``."""
        resp = self.smc(abi.FFA_MEM_SHARE_64, tot_len, tot_len, 0, 0)
        x0 = resp[0]
        if x0 == abi.FFA_ERROR:
            if resp[2]:  # the whole register is tested, its low 32 bits returned
                return abi.to_s32(resp[2]), 0
            return abi.FFA_RET_NOT_SUPPORTED, 0
        if x0 == abi.FFA_SUCCESS_32:
            return abi.FFA_RET_OK, abi.make_handle(resp[2], resp[3])
        if x0 == abi.FFA_MEM_FRAG_RX:
            return self.ffa_spmc_share_frag_rx(resp)
        return abi.FFA_RET_NOT_SUPPORTED, 0

    def ffa_spmc_share_frag_rx(self, resp: Regs) -> tuple[int, int]:
        """The SPMC wants another fragment of a descriptor Xen sent whole: ABORTED."""
        handle = abi.make_handle(resp[1], resp[2])
        return abi.FFA_RET_ABORTED, handle

    def ffa_spmc_reclaim(self, shm: FfaShmMem, flags: int) -> int:
        if not self.ffa_fw_supports_fid(abi.FFA_MEM_RECLAIM):
            return abi.FFA_RET_NOT_SUPPORTED
        return self.ffa_simple_call(
            abi.FFA_MEM_RECLAIM, abi.handle_lo(shm.handle), abi.handle_hi(shm.handle), flags, 0
        )

    # -- pages ------------------------------------------------------------------------------------
    def get_shm_pages(
        self, d: Domain, shm: FfaShmMem, view: GuestView, ranges_off: int, range_count: int
    ) -> int:
        """Reference every page of the guest's ranges; the caller must ``put_shm_pages`` even
        on failure."""
        for n in range(range_count):
            addr, page_count, _ = FFA_ADDRESS_RANGE.unpack(view.get(ranges_off + 16 * n, 16))
            if addr % FFA_PAGE_SIZE:
                return abi.FFA_RET_INVALID_PARAMETERS
            for m in range(page_count):
                if len(shm.pages) >= shm.page_count:
                    return abi.FFA_RET_INVALID_PARAMETERS  # more pages than announced
                if not ffa_safe_addr_add(addr, m):
                    return abi.FFA_RET_INVALID_PARAMETERS
                gaddr = addr + m * FFA_PAGE_SIZE
                e = get_page_from_gfn(d.p2m, gaddr >> 12)
                if e is None:
                    return abi.FFA_RET_DENIED
                shm.pages.append(e[0])
                if e[1] is not P2MType.ram_rw:
                    return abi.FFA_RET_DENIED  # only normal RW RAM
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
        if not self.shm_page_count_ok(page_count):
            return None
        if not self.inc_ctx_shm_count(d, ctx):
            return None
        if self.machine.sink.fault("alloc:ffa_shm_mem", (1,)) is not None:
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
        """Write a v1.1 descriptor (v1.2 EMAD when the SPMC speaks 1.2) for ``shm`` into Xen's
        TX buffer and share it with the SPMC; sets ``shm.handle``."""
        max_frag_len = FFA_RXTX_PAGE_COUNT * FFA_PAGE_SIZE
        ASSERT(shm.page_count, "shm->page_count")
        buf = self.ffa_rxtx_spmc_tx_acquire()
        if buf is None:
            return abi.FFA_RET_NOT_SUPPORTED
        ret = self._share_shm_locked(shm, ffa_vers, buf.pa, max_frag_len)
        self.ffa_rxtx_spmc_tx_release()  # out:
        return ret

    def build_share_descriptor(self, shm: FfaShmMem, ffa_vers: int) -> bytes:
        """The descriptor bytes for ``shm``, contiguous pages merged into one range each."""
        v12 = ffa_vers >= abi.FFA_VERSION_1_2
        mem_access_size = FFA_MEM_ACCESS_1_2.size if v12 else FFA_MEM_ACCESS.size
        mem_access_offs = FFA_MEM_TRANSACTION_1_1.size
        region_offs = mem_access_offs + mem_access_size
        ranges: list[list[int]] = []
        for pg in shm.pages:
            if ranges and ranges[-1][0] + ranges[-1][1] * FFA_PAGE_SIZE == pg.pa:
                ranges[-1][1] += 1
            else:
                ranges.append([pg.pa, 1])
        out = bytearray(
            FFA_MEM_TRANSACTION_1_1.pack(
                shm.sender_id,
                abi.FFA_NORMAL_MEM_REG_ATTR,
                0,
                shm.handle,
                0,
                mem_access_size,
                1,
                mem_access_offs,
                bytes(12),
            )
        )
        if v12:
            impdef = struct.pack("<QQ", *shm.impdef)
            out += FFA_MEM_ACCESS_1_2.pack(
                shm.ep_id, abi.FFA_MEM_ACC_RW, 0, region_offs, impdef, bytes(8)
            )
        else:
            out += FFA_MEM_ACCESS.pack(shm.ep_id, abi.FFA_MEM_ACC_RW, 0, region_offs, 0)
        out += FFA_MEM_REGION.pack(shm.page_count, len(ranges), 0)
        for pa, n in ranges:
            out += FFA_ADDRESS_RANGE.pack(pa, n, 0)
        return bytes(out)

    def _share_shm_locked(self, shm: FfaShmMem, ffa_vers: int, buf: int, max_frag_len: int) -> int:
        desc = self.build_share_descriptor(shm, ffa_vers)
        tot_len = len(desc)
        if tot_len > max_frag_len:
            return abi.FFA_RET_NOT_SUPPORTED  # worst case does not fit one page
        self.machine.mem.write(buf, desc, "xen")
        ret, handle = self.ffa_spmc_share(tot_len)
        shm.handle = handle
        return ret

    # -- reading the guest's descriptor -----------------------------------------------------------
    def read_mem_transaction(
        self, ffa_vers: int, view: GuestView, blen: int
    ) -> tuple[int, FfaMemTransactionInt]:
        """Copy the 1.0 or 1.1 header out of the guest's TX once, then check the copy."""
        trans = FfaMemTransactionInt()
        if ffa_vers >= abi.FFA_VERSION_1_1:
            if blen < FFA_MEM_TRANSACTION_1_1.size:
                return abi.FFA_RET_INVALID_PARAMETERS, trans
            (sender, attr, flags, handle, tag, size, count, offs, _) = (
                FFA_MEM_TRANSACTION_1_1.unpack(view.get(0, FFA_MEM_TRANSACTION_1_1.size))
            )
        else:
            if blen < FFA_MEM_TRANSACTION_1_0.size:
                return abi.FFA_RET_INVALID_PARAMETERS, trans
            (sender, attr, _, flags, handle, tag, _, count) = FFA_MEM_TRANSACTION_1_0.unpack(
                view.get(0, FFA_MEM_TRANSACTION_1_0.size)
            )
            size = FFA_MEM_ACCESS.size
            offs = FFA_MEM_TRANSACTION_1_0.size
        trans.sender_id = sender
        trans.handle = handle
        trans.tag = tag
        # The guest's copy is not read again after this point.
        ret = self.check_mem_transaction(attr, flags, size, count, offs, blen)
        if ret:
            return ret, trans
        trans.mem_reg_attr = attr
        trans.flags = flags
        trans.mem_access_size = size
        trans.mem_access_count = count
        trans.mem_access_offs = offs
        return abi.FFA_RET_OK, trans

    def check_mem_transaction(
        self, attr: int, flags: int, size: int, count: int, offs: int, blen: int
    ) -> int:
        """Range checks of ``read_mem_transaction``: values that cannot fit the internal struct
        are malformed; the EMAD array must fit; EMADs are at least 16 bytes, 16-byte aligned."""
        if attr > 0xFF or flags > 0xFF or size > 0xFF or count > 0xFF or offs > 0xFFFF:
            return abi.FFA_RET_INVALID_PARAMETERS
        if size * count + offs > blen:
            return abi.FFA_RET_INVALID_PARAMETERS
        if size < FFA_MEM_ACCESS.size:
            return abi.FFA_RET_INVALID_PARAMETERS
        if offs & 0xF:
            return abi.FFA_RET_INVALID_PARAMETERS
        return abi.FFA_RET_OK

    # -- guest FFA_MEM_SHARE ----------------------------------------------------------------------
    def ffa_handle_mem_share(self, d: Domain, regs: Regs) -> Regs:
        tot_len = regs[1] & abi.MASK32
        frag_len = regs[2] & abi.MASK32
        addr = regs[3]
        ctx = d.tee
        assert ctx is not None
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
        handle = 0
        shm_box: list[FfaShmMem | None] = [None]
        ret, handle = self._mem_share_tx_locked(d, ctx, tx_buf, tx_size, frag_len, shm_box)
        if ret:  # out:
            self.free_ffa_shm_mem(d, shm_box[0])
        self.ffa_tx_release(ctx)  # out_unlock:
        if ret == 0:  # out_set_ret:
            return ffa_set_regs_success(abi.handle_lo(handle), abi.handle_hi(handle))
        return ffa_set_regs_error(ret)

    def mem_share_frag_too_long(self) -> int:
        """What a fragment longer than the TX buffer gets (HEAD: 0, i.e. SUCCESS; a bug)."""
        return abi.FFA_RET_DENIED

    def _mem_share_tx_locked(
        self,
        d: Domain,
        ctx: FfaCtx,
        tx_buf: int,
        tx_size: int,
        frag_len: int,
        shm_box: list[FfaShmMem | None],
    ) -> tuple[int, int]:
        """The part of ``ffa_handle_mem_share`` run with the guest's TX held: ``(ret, handle)``.
        A share allocated here is left in ``shm_box`` for the caller to free on error."""
        if frag_len > tx_size:
            return self.mem_share_frag_too_long(), 0
        view = GuestView(self.machine, tx_buf, tx_size)
        ffa_vers = ctx.guest_vers.read()
        ret, trans = self.read_mem_transaction(ffa_vers, view, frag_len)
        if ret:
            return ret, 0
        ret = self.check_mem_share_attr(trans.mem_reg_attr)
        if ret:
            return ret, 0
        if trans.mem_access_count != 1:
            return abi.FFA_RET_NOT_SUPPORTED, 0  # one receiver only
        if trans.sender_id != ffa_get_vm_id(d):
            return abi.FFA_RET_INVALID_PARAMETERS, 0
        ret = self.check_mem_access_size(trans.mem_access_size)
        if ret:
            return ret, 0
        if trans.mem_access_offs + trans.mem_access_size > frag_len:
            return abi.FFA_RET_INVALID_PARAMETERS, 0
        ret, dst_id, region_offs, impdef = self.mem_share_read_mem_access(view, trans)
        if ret:
            return ret, 0
        if FFA_MEM_REGION.size + region_offs > frag_len:
            return abi.FFA_RET_NOT_SUPPORTED, 0
        page_count, range_count, _ = FFA_MEM_REGION.unpack(view.get(region_offs, 16))
        if not page_count:
            return abi.FFA_RET_INVALID_PARAMETERS, 0
        shm = self.alloc_ffa_shm_mem(d, page_count)
        if shm is None:
            return abi.FFA_RET_NO_MEMORY, 0
        shm_box[0] = shm
        shm.sender_id = trans.sender_id
        shm.ep_id = dst_id
        shm.impdef = impdef
        # The composite descriptor and its ranges must fit the fragment.
        if FFA_MEM_REGION.size + region_offs + range_count * FFA_ADDRESS_RANGE.size > frag_len:
            return abi.FFA_RET_INVALID_PARAMETERS, 0
        ret = self.get_shm_pages(d, shm, view, region_offs + FFA_MEM_REGION.size, range_count)
        if ret:
            return ret, 0
        ret = self.share_shm(shm, self.ffa_fw_version)
        if ret:
            return ret, 0
        spin_lock(ctx.lock)
        lst = ctx.shm_list.get()
        ctx.shm_list.set([*lst, shm])
        spin_unlock(ctx.lock)
        return abi.FFA_RET_OK, shm.handle

    def mem_share_read_mem_access(
        self, view: GuestView, trans: FfaMemTransactionInt
    ) -> tuple[int, int, int, tuple[int, int]]:
        """The EMAD part of ``ffa_handle_mem_share``: read the receiver, its permissions and
        the region offset once, and the impdef value of a 1.2-sized EMAD, then check them:
        ``(ret, dst_id, region_offs, impdef)``.

        Xen reads the first 8 bytes; the model fetches the whole 16-byte v1.1 EMAD (in bounds:
        the size was checked to be 16 or more, and each byte is fetched once). The double-fetch
        monitor regression test (tests/check) relies on that overlap with impdef."""
        offs = trans.mem_access_offs
        dst_id, perm, _, region_offs, _ = FFA_MEM_ACCESS.unpack(view.get(offs, FFA_MEM_ACCESS.size))
        # 1.2 EMADs carry an impdef value; the format follows the size, not the version.
        impdef = (0, 0)
        if trans.mem_access_size >= FFA_MEM_ACCESS_1_2.size:
            lo, hi = struct.unpack("<QQ", view.get(offs + 8, 16))
            impdef = (lo, hi)
        if not FFA_ID_IS_SECURE(dst_id):
            return abi.FFA_RET_NOT_SUPPORTED, 0, 0, impdef  # no sharing with VMs
        if perm != abi.FFA_MEM_ACC_RW:
            return abi.FFA_RET_NOT_SUPPORTED, 0, 0, impdef
        return abi.FFA_RET_OK, dst_id, region_offs, impdef

    def check_mem_access_size(self, size: int) -> int:
        """An EMAD smaller than the 16-byte v1.1 one is malformed."""
        if size < FFA_MEM_ACCESS.size:
            return abi.FFA_RET_INVALID_PARAMETERS
        return abi.FFA_RET_OK

    def check_mem_share_attr(self, attr: int) -> int:
        """The NS bit is reserved in a share (INVALID_PARAMETERS, edf036fac2); anything but
        normal write-back inner-shareable memory is NOT_SUPPORTED."""
        if attr & abi.FFA_MEM_ATTR_NS:
            return abi.FFA_RET_INVALID_PARAMETERS
        if attr != abi.FFA_NORMAL_MEM_REG_ATTR:
            return abi.FFA_RET_NOT_SUPPORTED
        return abi.FFA_RET_OK

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
                self.printk(f"{d}: failed to reclaim handle {shm.handle:#x}: {res}, retrying")
            else:
                self.printk(f"{d}: permanent failure to reclaim handle {shm.handle:#x}: {res}")
                ctx.shm_list.value = [s for s in ctx.shm_list.value if s is not shm]
                self.leaked_shms.append(shm)
        return not ctx.shm_count.value
