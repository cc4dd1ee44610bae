"""RX/TX buffers: Xen's own pair registered with the SPMC, and the guests'. Mirrors ffa_rxtx.c
(upstream HEAD, c447b7308b).

Xen's pair (``ffa_spmc_rx``/``ffa_spmc_tx``, one xenheap page each) is private to this file since
the seed patch; callers reach it only through ``ffa_rxtx_spmc_{rx,tx}_{acquire,release}``:
acquire takes the buffer's lock and returns the buffer, release drops the lock (and, for RX,
tells the SPMC that Xen is done with what it wrote there).

Locks owned here, in the order they nest:
``ctx.rx_lock`` -> ``ctx.tx_lock`` -> ``ffa_spmc_tx_lock`` (forwarding a guest's RXTX_MAP);
``ffa_spmc_rx_lock`` -> ``ffa_spmc_tx_lock`` (init and destroy of Xen's pair).
``ffa_spmc_rx_lock`` is taken with no guest lock held (partition info at init).

Upstream defects kept here (the ``reference`` variant fixes them): the acquire helpers return
NULL with their lock held (seed defect 2; no caller can reach it, see
:meth:`FfaRxtx.ffa_rxtx_spmc_rx_acquire`); ``ffa_rxtx_spmc_destroy`` frees the pages before
FFA_RXTX_UNMAP and unmaps a pair whose map had failed (seed defect 4).

Not modelled: more than one page per buffer (Xen BUILD_BUGs on it too).
"""

from __future__ import annotations

import struct

from .. import abi
from ..machine import (
    ASSERT,
    PAGE_SHIFT,
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
    spin_trylock,
    spin_unlock,
)
from ..machine.events import MEM
from ..machine.xmalloc import alloc_site, map_domain_page_global
from .ffa_private import (
    FFA_MAX_RXTX_PAGE_COUNT,
    FFA_PAGE_SIZE,
    FFA_RXTX_PAGE_COUNT,
    Domain,
    FfaBase,
    FfaCtx,
    MappedBuf,
    ffa_get_vm_id,
)

# struct ffa_endpoint_rxtx_descriptor_1_1: sender_id u16, reserved u16, rx_region_offs u32,
# tx_region_offs u32 (12 bytes; the regions follow at rx_region_offs / tx_region_offs).
FFA_ENDPOINT_RXTX_DESCRIPTOR_1_1 = struct.Struct("<HHII")
assert FFA_ENDPOINT_RXTX_DESCRIPTOR_1_1.size == 12

# offsetof(struct ffa_mem_region, address_range_array[1]): a composite with one range.
MEM_REGION_ONE_RANGE = 16 + 16


def ROUNDUP(x: int, a: int) -> int:  # Xen's macro name
    return (x + a - 1) // a * a


def unmap_domain_page_global(buf: MappedBuf) -> None:
    """Drop Xen's global mapping of a guest page: any later access through it aborts. A
    scheduling point that conflicts with every access to the page (what a concurrent access
    through the mapping depends on), though not itself an access."""
    buf.machine.sink.point(MEM, buf.pa >> PAGE_SHIFT, True)
    buf.mapped = False


def write_mem_region(buf: MappedBuf, off: int, pa: int) -> None:
    """The stores of ``ffa_handle_rxtx_map`` that describe one page at ``off`` of Xen's TX:
    a composite (total_page_count 1, one range, reserved 0) and its range {pa, 1, 0}."""
    buf.store(off, struct.pack("<I", 1))
    buf.store(off + 4, struct.pack("<I", 1))
    buf.store(off + 8, struct.pack("<Q", 0))
    buf.store(off + 16, struct.pack("<Q", pa))
    buf.store(off + 24, struct.pack("<I", 1))
    buf.store(off + 28, struct.pack("<I", 0))


def xenheap_buf(machine: Machine, frame: Frame, name: str) -> MappedBuf:
    """Xen's pointer to one of its own pages (xenheap pages are always mapped)."""
    return MappedBuf(machine, frame.pa, FFA_RXTX_PAGE_COUNT * FFA_PAGE_SIZE, name)


def write_rxtx_descriptor(buf: MappedBuf, sender: int, rx_offs: int, tx_offs: int) -> None:
    """The field stores of ``struct ffa_endpoint_rxtx_descriptor_1_1`` at the start of ``buf``."""
    buf.store(0, struct.pack("<H", sender))
    buf.store(2, struct.pack("<H", 0))
    buf.store(4, struct.pack("<I", rx_offs))
    buf.store(8, struct.pack("<I", tx_offs))


def rxtx_unmap_pages(ctx: FfaCtx) -> None:
    """The common tail of every version's ``rxtx_unmap``: unmap and put both pages, then clear
    every buffer field (the caller holds whatever locks its version takes)."""
    rx, tx = ctx.rx.get(), ctx.tx.get()
    if rx is not None:
        unmap_domain_page_global(rx)
    if tx is not None:
        unmap_domain_page_global(tx)
    rx_pg, tx_pg = ctx.rx_pg.get(), ctx.tx_pg.get()
    if rx_pg is not None:
        put_page(rx_pg)
    if tx_pg is not None:
        put_page(tx_pg)
    ctx.rx.set(None)
    ctx.tx.set(None)
    ctx.rx_pg.set(None)
    ctx.tx_pg.set(None)
    ctx.page_count = 0
    ctx.rx_is_free.set(False)


class FfaRxtx(FfaBase):
    """ffa_rxtx.c: the functions of that file, as methods of the mediator."""

    def __init__(self, machine: Machine, conduit: SmcConduit, vm_to_vm: bool = False) -> None:
        super().__init__(machine, conduit, vm_to_vm)
        m = self.machine
        self.ffa_spmc_rx_lock = Spinlock(m, "ffa_spmc_rx_lock")
        self.ffa_spmc_tx_lock = Spinlock(m, "ffa_spmc_tx_lock")
        # __read_mostly pointers, written under both locks by init/destroy.
        self.ffa_spmc_rx: Guarded[Frame | None] = Guarded(
            m, "ffa_spmc_rx", None, self.ffa_spmc_rx_lock
        )
        self.ffa_spmc_tx: Guarded[Frame | None] = Guarded(
            m, "ffa_spmc_tx", None, self.ffa_spmc_tx_lock
        )

    def ffa_fw_buffers(self) -> list[Frame]:
        return [f for f in (self.ffa_spmc_rx.value, self.ffa_spmc_tx.value) if f is not None]

    # -- thin SMC wrappers ------------------------------------------------------------------------
    def ffa_rxtx_map(self, tx_addr: int, rx_addr: int, page_count: int) -> int:
        return self.ffa_simple_call(abi.FFA_RXTX_MAP_64, tx_addr, rx_addr, page_count, 0)

    def ffa_rxtx_unmap(self, vm_id: int) -> int:
        return self.ffa_simple_call(abi.FFA_RXTX_UNMAP, vm_id << 16, 0, 0, 0)

    # -- guest FFA_RXTX_MAP -----------------------------------------------------------------------
    def ffa_handle_rxtx_map(
        self, d: Domain, fid: int, tx_addr: int, rx_addr: int, page_count: int
    ) -> int:
        """Map a guest's RX/TX pair; forward it to the SPMC when the SPMC has RX_ACQUIRE."""
        ctx = d.tee
        assert ctx is not None
        ret = abi.FFA_RET_INVALID_PARAMETERS
        page_count &= abi.MASK32
        if not abi.is_64bit_fid(fid):
            # Calls using the 32-bit convention must ignore the upper halves.
            tx_addr &= abi.MASK32
            rx_addr &= abi.MASK32
        if page_count > FFA_MAX_RXTX_PAGE_COUNT or not page_count:
            self.printk(f"RXTX_MAP: error: {page_count} pages requested (limit 1)")
            return abi.FFA_RET_INVALID_PARAMETERS
        if tx_addr % FFA_PAGE_SIZE or rx_addr % FFA_PAGE_SIZE:
            return abi.FFA_RET_INVALID_PARAMETERS

        spin_lock(ctx.rx_lock)
        spin_lock(ctx.tx_lock)
        # Each failure names the label the C jumps to; the unwind ladder at the end falls
        # through from there, as the C's labels do.
        goto = ""
        tx_pg = rx_pg = None
        tx = rx = None
        if ctx.rx.get() is not None:
            ret, goto = abi.FFA_RET_DENIED, "err_unlock_rxtx"  # already mapped
        if not goto:
            e = get_page_from_gfn(d.p2m, tx_addr >> 12)
            if e is None:
                goto = "err_unlock_rxtx"
            else:
                tx_pg, t = e
                if t is not P2MType.ram_rw:  # only normal RW RAM for now
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
                ret, goto = abi.FFA_RET_NO_MEMORY, "err_put_rx_pg"
            else:
                tx = MappedBuf(self.machine, tx_pa, page_count * FFA_PAGE_SIZE, "TX")
        if not goto:
            assert rx_pg is not None
            rx_pa = map_domain_page_global(self.machine, rx_pg, "ffa_handle_rxtx_map")
            if rx_pa is None:
                ret, goto = abi.FFA_RET_NO_MEMORY, "err_unmap_tx"
            else:
                rx = MappedBuf(self.machine, rx_pa, page_count * FFA_PAGE_SIZE, "RX")
        # Transmit the buffers to the SPMC only if it supports RX_ACQUIRE: otherwise there is
        # no need to acquire/release/map VM buffers with it (as Xen reads the spec).
        if not goto and self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE):
            assert tx_pg is not None and rx_pg is not None
            desc = self.ffa_rxtx_spmc_tx_acquire()
            if desc is None:
                goto = "err_unmap_rx"  # ffa_spmc_tx_lock is still held (seed defect 2)
            else:
                # One page for each: descriptor, RX region and range, TX region and range.
                rx_offs = ROUNDUP(FFA_ENDPOINT_RXTX_DESCRIPTOR_1_1.size, 8)
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
        spin_unlock(ctx.tx_lock)  # err_unlock_rxtx:
        spin_unlock(ctx.rx_lock)
        return ret

    # -- guest FFA_RXTX_UNMAP ---------------------------------------------------------------------
    def rxtx_unmap(self, d: Domain, teardown: bool) -> int:
        """Unmap a guest's pair (its FFA_RXTX_UNMAP, or teardown with ``teardown`` set): DENIED
        while the guest owns its RX (309e8edfe3); teardown releases it at the SPMC first."""
        ctx = d.tee
        assert ctx is not None
        ret = abi.FFA_RET_OK
        spin_lock(ctx.rx_lock)
        spin_lock(ctx.tx_lock)
        if not ctx.page_count:
            ret = abi.FFA_RET_INVALID_PARAMETERS
        elif not ctx.rx_is_free.get() and not teardown:
            self.printk("RXTX_UNMAP denied, RX buffer owned by VM")
            ret = abi.FFA_RET_DENIED
        else:
            if not ctx.rx_is_free.get() and self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE):
                # Can't use ffa_rx_release() while holding rx_lock.
                rel_ret = self.ffa_simple_call(abi.FFA_RX_RELEASE, ctx.ffa_id, 0, 0, 0)
                if rel_ret:
                    self.printk(f"RX release during teardown failed: {rel_ret}")
            if self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE):
                ret = self.ffa_rxtx_unmap(ffa_get_vm_id(d))
            if ret == abi.FFA_RET_OK:
                rxtx_unmap_pages(ctx)
        spin_unlock(ctx.tx_lock)  # err_unlock_rxtx:
        spin_unlock(ctx.rx_lock)
        return ret

    def ffa_handle_rxtx_unmap(self, d: Domain) -> int:
        return self.rxtx_unmap(d, False)

    # -- guest RX ownership -----------------------------------------------------------------------
    def ffa_rx_acquire(self, ctx: FfaCtx) -> tuple[int, MappedBuf | None, int]:
        """Take producer ownership of a guest's RX: ``(ret, buf, size)``.

        DENIED when nothing is mapped, BUSY while the guest owns it, or the SPMC's error for
        FFA_RX_ACQUIRE. Ownership then stays with the guest until its FFA_RX_RELEASE; the
        buffer is used after ``rx_lock`` is dropped (``rx_is_free`` serialises producers)."""
        ret = abi.FFA_RET_OK
        buf = None
        size = 0
        spin_lock(ctx.rx_lock)
        if not ctx.page_count:
            ret = abi.FFA_RET_DENIED
            self.printk("RX acquire denied, no RX/TX mapped")
        elif not ctx.rx_is_free.get():
            ret = abi.FFA_RET_BUSY
        else:
            if self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE):
                ret = self.ffa_simple_call(abi.FFA_RX_ACQUIRE, ctx.ffa_id, 0, 0, 0)
            if ret == abi.FFA_RET_OK:
                ctx.rx_is_free.set(False)
                buf = ctx.rx.get()
                size = ctx.page_count * FFA_PAGE_SIZE
        spin_unlock(ctx.rx_lock)  # out:
        return ret, buf, size

    def ffa_rx_release(self, ctx: FfaCtx) -> int:
        """The guest (or Xen on an error path) hands the RX back to its producers."""
        ret = abi.FFA_RET_DENIED
        spin_lock(ctx.rx_lock)
        if ctx.page_count and not ctx.rx_is_free.get():
            ok = True
            if self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE):
                ret = self.ffa_simple_call(abi.FFA_RX_RELEASE, ctx.ffa_id, 0, 0, 0)
                ok = ret == abi.FFA_RET_OK
            if ok:
                ret = abi.FFA_RET_OK
                ctx.rx_is_free.set(True)
        spin_unlock(ctx.rx_lock)  # out:
        return ret

    def ffa_tx_acquire(self, ctx: FfaCtx) -> tuple[int, MappedBuf | None, int]:
        """Lock a guest's TX for reading: ``(ret, buf, size)``; on OK ``tx_lock`` stays held
        until :meth:`ffa_tx_release`. BUSY on contention (trylock), DENIED if unmapped."""
        if not spin_trylock(ctx.tx_lock):
            self.printk("TX acquire busy")
            return abi.FFA_RET_BUSY, None, 0
        tx = ctx.tx.get()
        if not ctx.page_count or tx is None:
            spin_unlock(ctx.tx_lock)  # err_unlock:
            return abi.FFA_RET_DENIED, None, 0
        return abi.FFA_RET_OK, tx, ctx.page_count * FFA_PAGE_SIZE

    def ffa_tx_release(self, ctx: FfaCtx) -> int:
        ASSERT(spin_is_locked(ctx.tx_lock), "spin_is_locked(&ctx->tx_lock)")
        spin_unlock(ctx.tx_lock)
        return abi.FFA_RET_OK

    # -- domain lifecycle -------------------------------------------------------------------------
    def ffa_rxtx_domain_init(self, d: Domain) -> int:
        """Initialise the buffer fields (the locks exist from ctx creation in the model)."""
        ctx = d.tee
        assert ctx is not None
        ctx.page_count = 0
        return 0

    def ffa_rxtx_domain_destroy(self, d: Domain) -> None:
        self.rxtx_unmap(d, True)

    # -- Xen's own buffers (the seed's helpers) ---------------------------------------------------
    def ffa_rxtx_spmc_rx_acquire(self) -> MappedBuf | None:
        """Lock Xen's RX buffer and return it; NULL when there is none, **with the lock still
        held** (seed defect 2).

        No caller can reach the NULL branch: every one is gated on a firmware ABI bit, and the
        probe clears the whole bitmap whenever it leaves the buffers unallocated
        (``err_no_fw``). The checker can force the branch (fault ``helper:<this name>``: the
        load of ``ffa_spmc_rx`` reads NULL) to show what it does."""
        forced = self.machine.sink.fault("helper:ffa_rxtx_spmc_rx_acquire", (1,)) is not None
        spin_lock(self.ffa_spmc_rx_lock)
        frame = self.ffa_spmc_rx.get()
        if frame is not None and not forced:
            return xenheap_buf(self.machine, frame, "ffa_spmc_rx")
        return None

    def ffa_rxtx_spmc_rx_release(self, notify_fw: bool) -> int:
        """Unlock Xen's RX buffer; tell the SPMC with FFA_RX_RELEASE only if it wrote there
        (``notify_fw``: a97fe0a4c7). Returns the SPMC's status."""
        ASSERT(spin_is_locked(self.ffa_spmc_rx_lock), "spin_is_locked(&ffa_spmc_rx_lock)")
        if notify_fw:
            # Inform the SPMC that we are done with our RX buffer.
            ret = self.ffa_simple_call(abi.FFA_RX_RELEASE, 0, 0, 0, 0)
        else:
            ret = abi.FFA_RET_OK
        spin_unlock(self.ffa_spmc_rx_lock)
        return ret

    def ffa_rxtx_spmc_tx_acquire(self) -> MappedBuf | None:
        """Lock Xen's TX buffer and return it; NULL with the lock held, as for RX (forced by
        ``helper:ffa_rxtx_spmc_tx_acquire``)."""
        forced = self.machine.sink.fault("helper:ffa_rxtx_spmc_tx_acquire", (1,)) is not None
        spin_lock(self.ffa_spmc_tx_lock)
        frame = self.ffa_spmc_tx.get()
        if frame is not None and not forced:
            return xenheap_buf(self.machine, frame, "ffa_spmc_tx")
        return None

    def ffa_rxtx_spmc_tx_release(self) -> None:
        ASSERT(spin_is_locked(self.ffa_spmc_tx_lock), "spin_is_locked(&ffa_spmc_tx_lock)")
        spin_unlock(self.ffa_spmc_tx_lock)

    def ffa_rxtx_spmc_destroy(self) -> None:
        """Free Xen's pair, then FFA_RXTX_UNMAP if both pages existed: the pages are back in
        the heap while the SPMC still maps them, and a pair whose map failed is unmapped too
        (seed defect 4)."""
        spin_lock(self.ffa_spmc_rx_lock)
        spin_lock(self.ffa_spmc_tx_lock)
        tx = self.ffa_spmc_tx.get()
        rx = self.ffa_spmc_rx.get()
        need_unmap = tx is not None and rx is not None
        if tx is not None:
            self.machine.heap.free_page(tx)
            self.ffa_spmc_tx.set(None)
        if rx is not None:
            self.machine.heap.free_page(rx)
            self.ffa_spmc_rx.set(None)
        if need_unmap:
            self.ffa_rxtx_unmap(0)
        spin_unlock(self.ffa_spmc_tx_lock)
        spin_unlock(self.ffa_spmc_rx_lock)

    def ffa_rxtx_spmc_init(self) -> bool:
        """Allocate Xen's pair and register it with the SPMC (FFA_RXTX_MAP_64)."""
        if not self.ffa_fw_supports_fid(abi.FFA_RXTX_MAP_64):
            return False
        ret = False
        spin_lock(self.ffa_spmc_rx_lock)
        spin_lock(self.ffa_spmc_tx_lock)
        heap = self.machine.heap
        site = alloc_site("alloc_xenheap_pages", "ffa_rxtx_spmc_init")
        rx = heap.alloc_page("xen", site=site, tag="ffa_spmc_rx")
        self.ffa_spmc_rx.set(rx)
        if rx is not None:
            tx = heap.alloc_page("xen", site=site, tag="ffa_spmc_tx")
            self.ffa_spmc_tx.set(tx)
            if tx is not None and not self.ffa_rxtx_map(tx.pa, rx.pa, FFA_RXTX_PAGE_COUNT):
                ret = True
        spin_unlock(self.ffa_spmc_tx_lock)  # exit:
        spin_unlock(self.ffa_spmc_rx_lock)
        if not ret:
            self.ffa_rxtx_spmc_destroy()
        return ret
