"""RX/TX buffers: Xen's own pair registered with the SPMC, and the guests'. Mirrors ffa_rxtx.c.

Xen's pair (``ffa_spmc_rx``/``ffa_spmc_tx``, one xenheap page each) is private to this file since
the seed patch; callers reach it only through ``ffa_rxtx_spmc_{rx,tx}_{acquire,release}``:
acquire takes the buffer's lock and returns the buffer, release drops the lock (and, for RX,
tells the SPMC that Xen is done with what it wrote there).

Locks owned here, in the order they nest:
``ctx.rx_lock`` -> ``ctx.tx_lock`` -> ``ffa_spmc_tx_lock`` (forwarding a guest's RXTX_MAP);
``ffa_spmc_rx_lock`` -> ``ffa_spmc_tx_lock`` (init and destroy of Xen's pair).
``ffa_spmc_rx_lock`` is taken with no guest lock held (partition info at init).

Reference behaviour (fixes over the seed): acquire drops the lock before returning NULL; no
``ASSERT(!spin_is_locked())`` in acquire; RX release tells the SPMC only when it owns the buffer
(``notify_fw``); destroy unmaps before it frees, and only a pair that was mapped; the guest's
RXTX_UNMAP is DENIED while the guest owns its RX; teardown force-releases it.

Not modelled: more than one page per buffer (Xen BUILD_BUGs on it too).
"""

from __future__ import annotations

# struct ffa_endpoint_rxtx_descriptor_1_1: sender_id u16, reserved u16, rx_region_offs u32,
# tx_region_offs u32 (12 bytes; the regions follow at rx_region_offs / tx_region_offs).
import struct

from .. import abi
from ..machine import (
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
    spin_trylock,
    spin_unlock,
)
from .ffa_private import (
    FFA_ADDRESS_RANGE,
    FFA_MAX_RXTX_PAGE_COUNT,
    FFA_MEM_REGION,
    FFA_PAGE_SIZE,
    FFA_RXTX_PAGE_COUNT,
    Domain,
    FfaBase,
    FfaCtx,
    ffa_get_vm_id,
)

FFA_ENDPOINT_RXTX_DESCRIPTOR_1_1 = struct.Struct("<HHII")
assert FFA_ENDPOINT_RXTX_DESCRIPTOR_1_1.size == 12


def _roundup(x: int, a: int) -> int:
    return (x + a - 1) // a * a


class FfaRxtx(FfaBase):
    """ffa_rxtx.c: the functions of that file, as methods of the mediator."""

    # Where the RX region sits in the forwarded RXTX_MAP descriptor: the header rounded up to
    # 8 bytes (d1b958a92c: the SPMC requires 8-byte aligned regions). The seed used 12.
    RXTX_DESC_RX_REGION_OFFS = _roundup(FFA_ENDPOINT_RXTX_DESCRIPTOR_1_1.size, 8)
    # Error when Xen cannot map a guest page globally: NO_MEMORY since d1b958a92c.
    RXTX_MAP_VMAP_FAILURE = abi.FFA_RET_NO_MEMORY
    # rxtx_unmap looks at RX ownership (309e8edfe3): DENIED while the guest owns its RX, and
    # teardown releases it first. The seed does neither.
    RXTX_UNMAP_CHECKS_RX_OWNER = True
    # The SPMC buffer acquire helpers drop their lock before returning NULL (the reference's
    # fix of seed defect 2; upstream keeps the lock).
    SPMC_ACQUIRE_NULL_UNLOCKS = True

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
        page_count &= abi.MASK32
        if not abi.is_64bit_fid(fid):
            # SMC32 callers: the upper halves of the address registers are ignored.
            tx_addr &= abi.MASK32
            rx_addr &= abi.MASK32
        if page_count > FFA_MAX_RXTX_PAGE_COUNT or not page_count:
            self.printk(f"RXTX_MAP: {page_count} pages requested (limit 1)")
            return abi.FFA_RET_INVALID_PARAMETERS
        if tx_addr % FFA_PAGE_SIZE or rx_addr % FFA_PAGE_SIZE:
            return abi.FFA_RET_INVALID_PARAMETERS

        spin_lock(ctx.rx_lock)
        spin_lock(ctx.tx_lock)
        ret = self._rxtx_map_locked(d, ctx, tx_addr, rx_addr, page_count)
        spin_unlock(ctx.tx_lock)  # err_unlock_rxtx:
        spin_unlock(ctx.rx_lock)
        return ret

    def _rxtx_map_locked(
        self, d: Domain, ctx: FfaCtx, tx_addr: int, rx_addr: int, page_count: int
    ) -> int:
        """The body of ``ffa_handle_rxtx_map`` between the locks, with its unwind ladder."""
        if ctx.rx.get() is not None:
            return abi.FFA_RET_DENIED  # already mapped
        e = get_page_from_gfn(d.p2m, tx_addr >> 12)
        if e is None:
            return abi.FFA_RET_INVALID_PARAMETERS
        tx_pg, t = e
        if t is not P2MType.ram_rw:
            put_page(tx_pg)  # err_put_tx_pg:
            return abi.FFA_RET_INVALID_PARAMETERS
        e = get_page_from_gfn(d.p2m, rx_addr >> 12)
        if e is None:
            put_page(tx_pg)
            return abi.FFA_RET_INVALID_PARAMETERS
        rx_pg, t = e
        if t is not P2MType.ram_rw:
            put_page(rx_pg)  # err_put_rx_pg:
            put_page(tx_pg)
            return abi.FFA_RET_INVALID_PARAMETERS
        # __map_domain_page_global() of each page (an injectable failure).
        if self.machine.sink.fault("alloc:ffa_rxtx_map_global", (1,)) is not None:
            put_page(rx_pg)
            put_page(tx_pg)
            return self.RXTX_MAP_VMAP_FAILURE

        # Forward the buffers to the SPMC only if it supports RX_ACQUIRE: otherwise there is no
        # need to acquire/release/map VM buffers with it (FF-A v1.1 §5.2.2, as Xen reads it).
        if self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE):
            ret = self._rxtx_map_forward(d, tx_pg, rx_pg)
            if ret != abi.FFA_RET_OK:
                put_page(rx_pg)  # err_unmap_rx: .. err_put_tx_pg:
                put_page(tx_pg)
                return ret

        ctx.rx.set(rx_pg.pa)
        ctx.tx.set(tx_pg.pa)
        ctx.rx_pg.set(rx_pg)
        ctx.tx_pg.set(tx_pg)
        ctx.page_count = page_count
        ctx.rx_is_free.set(True)
        return abi.FFA_RET_OK

    def _rxtx_map_forward(self, d: Domain, tx_pg: Frame, rx_pg: Frame) -> int:
        """Build the endpoint RX/TX descriptor in Xen's TX buffer and call RXTX_MAP_64(0, 0, 0).

        Packs, in one page: the descriptor header, the RX region with its one range, the TX
        region with its one range. Addresses are physical."""
        buf = self.ffa_rxtx_spmc_tx_acquire()
        if buf is None:
            # The seed jumps to err_unmap_rx here with the SPMC TX lock still held; the
            # reference helper has already dropped it.
            return abi.FFA_RET_INVALID_PARAMETERS
        rx_offs = self.RXTX_DESC_RX_REGION_OFFS
        tx_offs = rx_offs + FFA_MEM_REGION.size + FFA_ADDRESS_RANGE.size
        hdr = FFA_ENDPOINT_RXTX_DESCRIPTOR_1_1.pack(ffa_get_vm_id(d), 0, rx_offs, tx_offs)
        out = bytearray(tx_offs + FFA_MEM_REGION.size + FFA_ADDRESS_RANGE.size)
        out[: len(hdr)] = hdr
        out[rx_offs : rx_offs + 16] = FFA_MEM_REGION.pack(1, 1, 0)
        out[rx_offs + 16 : rx_offs + 32] = FFA_ADDRESS_RANGE.pack(rx_pg.pa, 1, 0)
        out[tx_offs : tx_offs + 16] = FFA_MEM_REGION.pack(1, 1, 0)
        out[tx_offs + 16 : tx_offs + 32] = FFA_ADDRESS_RANGE.pack(tx_pg.pa, 1, 0)
        self.machine.mem.write(buf.pa, bytes(out), "xen")
        ret = self.ffa_rxtx_map(0, 0, 0)
        self.ffa_rxtx_spmc_tx_release()
        return ret

    # -- guest FFA_RXTX_UNMAP ---------------------------------------------------------------------
    def rxtx_unmap(self, d: Domain, teardown: bool) -> int:
        """Unmap a guest's pair (the guest's call, or teardown with ``teardown`` set)."""
        ctx = d.tee
        assert ctx is not None
        spin_lock(ctx.rx_lock)
        spin_lock(ctx.tx_lock)
        ret = self._rxtx_unmap_locked(d, ctx, teardown)
        spin_unlock(ctx.tx_lock)  # err_unlock_rxtx:
        spin_unlock(ctx.rx_lock)
        return ret

    def _rxtx_unmap_locked(self, d: Domain, ctx: FfaCtx, teardown: bool) -> int:
        if not ctx.page_count:
            return abi.FFA_RET_INVALID_PARAMETERS
        if self.RXTX_UNMAP_CHECKS_RX_OWNER and not ctx.rx_is_free.get():
            if teardown:
                if self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE):
                    # ffa_rx_release() would take rx_lock again: call the SPMC directly.
                    rel = self.ffa_simple_call(abi.FFA_RX_RELEASE, ctx.ffa_id, 0, 0, 0)
                    if rel:
                        self.printk(f"RX release during teardown failed: {rel}")
            else:
                self.printk("RXTX_UNMAP denied, RX buffer owned by VM")
                return abi.FFA_RET_DENIED
        if self.ffa_fw_supports_fid(abi.FFA_RX_ACQUIRE):
            ret = self.ffa_rxtx_unmap(ffa_get_vm_id(d))
            if ret != abi.FFA_RET_OK:
                return ret
        self._rxtx_drop_mappings(ctx)
        return abi.FFA_RET_OK

    def _rxtx_drop_mappings(self, ctx: FfaCtx) -> None:
        """unmap_domain_page_global() both pages, put_page() both, clear every field."""
        rx_pg = ctx.rx_pg.get()
        tx_pg = ctx.tx_pg.get()
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

    def ffa_handle_rxtx_unmap(self, d: Domain) -> int:
        return self.rxtx_unmap(d, False)

    # -- guest RX ownership -----------------------------------------------------------------------
    def ffa_rx_acquire(self, ctx: FfaCtx) -> tuple[int, int, int]:
        """Take producer ownership of a guest's RX: ``(ret, rx address, size)``.

        DENIED when nothing is mapped, BUSY while the guest owns it, or the SPMC's error for
        FFA_RX_ACQUIRE. Ownership then stays with the guest until its FFA_RX_RELEASE."""
        ret = abi.FFA_RET_OK
        buf = 0
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
                buf = ctx.rx.get() or 0
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

    def ffa_tx_acquire(self, ctx: FfaCtx) -> tuple[int, int, int]:
        """Lock a guest's TX for reading: ``(ret, tx address, size)``; on OK ``tx_lock`` stays
        held until :meth:`ffa_tx_release`. BUSY on contention (trylock), DENIED if unmapped."""
        if not spin_trylock(ctx.tx_lock):
            self.printk("TX acquire busy")
            return abi.FFA_RET_BUSY, 0, 0
        tx = ctx.tx.get()
        if not ctx.page_count or tx is None:
            spin_unlock(ctx.tx_lock)  # err_unlock:
            return abi.FFA_RET_DENIED, 0, 0
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
    def ffa_rxtx_spmc_rx_acquire(self) -> Frame | None:
        """Lock Xen's RX buffer and return it; None when there is none (the lock dropped,
        unless ``SPMC_ACQUIRE_NULL_UNLOCKS`` is off as upstream).

        The checker may force the NULL path through ``helper:ffa_rxtx_spmc_rx_acquire``."""
        forced = self.machine.sink.fault("helper:ffa_rxtx_spmc_rx_acquire", (1,)) is not None
        spin_lock(self.ffa_spmc_rx_lock)
        buf = self.ffa_spmc_rx.get()
        if buf is None or forced:
            if self.SPMC_ACQUIRE_NULL_UNLOCKS:
                spin_unlock(self.ffa_spmc_rx_lock)
            return None
        return buf

    def ffa_rxtx_spmc_rx_release(self, notify_fw: bool) -> int:
        """Unlock Xen's RX buffer; tell the SPMC with FFA_RX_RELEASE only if it wrote there
        (``notify_fw``: a97fe0a4c7). Returns the SPMC's status."""
        ASSERT(spin_is_locked(self.ffa_spmc_rx_lock), "spin_is_locked(&ffa_spmc_rx_lock)")
        ret = abi.FFA_RET_OK
        if notify_fw:
            ret = self.ffa_simple_call(abi.FFA_RX_RELEASE, 0, 0, 0, 0)
        spin_unlock(self.ffa_spmc_rx_lock)
        return ret

    def ffa_rxtx_spmc_tx_acquire(self) -> Frame | None:
        """Lock Xen's TX buffer and return it; None when there is none (as for RX)."""
        forced = self.machine.sink.fault("helper:ffa_rxtx_spmc_tx_acquire", (1,)) is not None
        spin_lock(self.ffa_spmc_tx_lock)
        buf = self.ffa_spmc_tx.get()
        if buf is None or forced:
            if self.SPMC_ACQUIRE_NULL_UNLOCKS:
                spin_unlock(self.ffa_spmc_tx_lock)
            return None
        return buf

    def ffa_rxtx_spmc_tx_release(self) -> None:
        ASSERT(spin_is_locked(self.ffa_spmc_tx_lock), "spin_is_locked(&ffa_spmc_tx_lock)")
        spin_unlock(self.ffa_spmc_tx_lock)

    def ffa_rxtx_spmc_destroy(self) -> None:
        """Unregister and free Xen's pair: the SPMC is told to unmap (only a pair that was
        mapped) before the pages go back to the heap."""
        spin_lock(self.ffa_spmc_rx_lock)
        spin_lock(self.ffa_spmc_tx_lock)
        rx = self.ffa_spmc_rx.get()
        tx = self.ffa_spmc_tx.get()
        if rx is not None and tx is not None and self.ffa_spmc_mapped:
            self.ffa_rxtx_unmap(0)
        self.ffa_spmc_mapped = False
        if tx is not None:
            self.machine.heap.free_page(tx)
            self.ffa_spmc_tx.set(None)
        if rx is not None:
            self.machine.heap.free_page(rx)
            self.ffa_spmc_rx.set(None)
        spin_unlock(self.ffa_spmc_tx_lock)
        spin_unlock(self.ffa_spmc_rx_lock)

    ffa_spmc_mapped = False
    """Whether FFA_RXTX_MAP_64 of Xen's pair succeeded (the reference's destroy needs it)."""

    def ffa_rxtx_spmc_init(self) -> bool:
        """Allocate Xen's pair and register it with the SPMC (FFA_RXTX_MAP_64)."""
        if not self.ffa_fw_supports_fid(abi.FFA_RXTX_MAP_64):
            return False
        ret = False
        spin_lock(self.ffa_spmc_rx_lock)
        spin_lock(self.ffa_spmc_tx_lock)
        heap = self.machine.heap
        rx = heap.alloc_page("xen", site="ffa_spmc_rx", tag="ffa_spmc_rx")
        self.ffa_spmc_rx.set(rx)
        if rx is not None:
            tx = heap.alloc_page("xen", site="ffa_spmc_tx", tag="ffa_spmc_tx")
            self.ffa_spmc_tx.set(tx)
            if tx is not None:
                e = self.ffa_rxtx_map(tx.pa, rx.pa, FFA_RXTX_PAGE_COUNT)
                if not e:
                    self.ffa_spmc_mapped = True
                    ret = True
        spin_unlock(self.ffa_spmc_tx_lock)  # exit:
        spin_unlock(self.ffa_spmc_rx_lock)
        if not ret:
            self.ffa_rxtx_spmc_destroy()
        return ret
