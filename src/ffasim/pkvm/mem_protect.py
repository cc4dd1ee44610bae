"""The host stage-2 page states the FF-A proxy moves pages through. Mirrors the FF-A part of
``arch/arm64/kvm/hyp/nvhe/mem_protect.c`` (plus the donations scenarios need).

pKVM tracks, for every page of memory, the host's state (``struct hyp_page::host_state``:
OWNED, SHARED_OWNED, SHARED_BORROWED, NOPAGE) and the hypervisor's (the software bits of its own
stage-1 entry; here ``hyp_state`` on the same record), and a reference count that pins a page
the hypervisor borrowed. FF-A has no page table of its own: sharing with the secure world only
moves the host's state from OWNED to SHARED_OWNED, the page stays mapped in the host stage-2 and
the host keeps reading and writing it. The protection argument of ffa.c's header follows: a page
given to a guest or the hypervisor is not host-OWNED, so it cannot be shared with FF-A, and a
page shared with FF-A is not host-OWNED, so it cannot be donated afterwards; whichever
transition comes second fails.

Locks: ``host_mmu.lock`` (``host_lock_component``) then ``pkvm_pgd_lock``
(``hyp_lock_component``), in that order, never the other way. ffa.c takes them inside
``host_buffers.lock``. Every read or write of a page's state is declared to the checker
(``P2M`` on ``("host", pfn)`` or ``("hyp", pfn)``): the host's own accesses walk the stage-2
without any lock, as the MMU does.

Names: C functions whose names start with two underscores (``__pkvm_host_share_ffa``) lose one
here (``_pkvm_host_share_ffa``): Python mangles ``__name`` inside a class body. Search for the
C name without its underscores.

Memory is what the system registered (``hyp_memory``, the memblock list): the proxy's pages,
the host's RAM, the guests' RAM. Anything else (secure memory, frames nobody was given) is not
memory: a transition naming it fails with -EPERM or -EINVAL as ``check_range_allowed_memory``
says. Not modelled: MMIO, block mappings, the host's lazy stage-2 faults (every page of memory
is mapped from the start, so HOST_CHECK_ALLOW_NO_MAP changes nothing), page-table memory pools.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from ..machine import HypervisorPanic, Machine, Spinlock, grant, revoke, spin_lock, spin_unlock
from ..machine.events import MEM, P2M, REF
from ..machine.memory import MAX_MFN, PAGE_SHIFT, PAGE_SIZE

if TYPE_CHECKING:
    from ..machine import Frame

_M64 = (1 << 64) - 1

EPERM = 1
EBUSY = 16
EINVAL = 22
EOPNOTSUPP = 95

PKVM_PARTY = "pkvm"
"""Who EL2 is, for the machine's memory accounting: owner of the hypervisor's pages."""

HOST_PARTY = "host"


class PageState(enum.Enum):
    """``enum pkvm_page_state``."""

    OWNED = "PKVM_PAGE_OWNED"
    SHARED_OWNED = "PKVM_PAGE_SHARED_OWNED"
    SHARED_BORROWED = "PKVM_PAGE_SHARED_BORROWED"
    NOPAGE = "PKVM_NOPAGE"


OWNED = PageState.OWNED
SHARED_OWNED = PageState.SHARED_OWNED
SHARED_BORROWED = PageState.SHARED_BORROWED
NOPAGE = PageState.NOPAGE


class HypPage:
    """``struct hyp_page`` of one page, with the hypervisor's own stage-1 state beside it."""

    __slots__ = ("frame", "host_state", "hyp_state", "refcount")

    def __init__(self, frame: Frame, host_state: PageState, hyp_state: PageState) -> None:
        self.frame = frame
        self.host_state = host_state  # guarded by host_mmu.lock
        self.hyp_state = hyp_state  # guarded by pkvm_pgd_lock
        self.refcount = 0  # hyp pins, under pkvm_pgd_lock

    def __repr__(self) -> str:
        return (
            f"<hyp_page 0x{self.frame.mfn:x} host {self.host_state.name} "
            f"hyp {self.hyp_state.name} ref {self.refcount}>"
        )


def hyp_phys_to_pfn(phys: int) -> int:
    return phys >> PAGE_SHIFT


def hyp_pfn_to_phys(pfn: int) -> int:
    return pfn << PAGE_SHIFT


class MemProtect:
    """mem_protect.c: the host and hypervisor page states and the transitions ffa.c uses.

    The root of the hypervisor object's class chain (``MemProtect`` <- ``Ffa`` <- ``Pkvm``), so
    that a variant overrides a function of either file under its C name.
    """

    PA_BITS = 40
    """``kvm_phys_shift(&host_mmu.arch.mmu)``: the host's IPA size (PARange of the model)."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.host_mmu_lock = Spinlock(machine, "host_mmu.lock")
        self.pkvm_pgd_lock = Spinlock(machine, "pkvm_pgd_lock")
        # hyp_vmemmap: one struct hyp_page per page of memory, by pfn.
        self.hyp_vmemmap: dict[int, HypPage] = {}
        # hyp_memory[]: the memblock regions, [start_pfn, end_pfn), sorted, non-adjacent.
        self.hyp_memory: list[tuple[int, int]] = []

    # -- bookkeeping for the system (boot-time setup, not a transition) --------------------------
    def register_memory(
        self, frames: list[Frame], host_state: PageState, hyp_state: PageState
    ) -> None:
        """Add ``frames`` to memory (the memblock list and the vmemmap) in the given states."""
        for f in frames:
            self.hyp_vmemmap[f.mfn] = HypPage(f, host_state, hyp_state)
            self._add_region(f.mfn)

    def _add_region(self, pfn: int) -> None:
        regions = self.hyp_memory
        for i, (start, end) in enumerate(regions):
            if start <= pfn < end:
                return
            if pfn == end:
                regions[i] = (start, end + 1)
                if i + 1 < len(regions) and regions[i + 1][0] == end + 1:
                    regions[i] = (start, regions.pop(i + 1)[1])
                return
            if pfn + 1 == start:
                regions[i] = (pfn, end)
                return
            if pfn < start:
                regions.insert(i, (pfn, pfn + 1))
                return
        regions.append((pfn, pfn + 1))

    def hyp_phys_to_page(self, phys: int) -> HypPage:
        """The vmemmap entry of ``phys``; reaching past the vmemmap is an EL2 data abort (the
        callers have checked that the range is memory, as the C does)."""
        page = self.hyp_vmemmap.get(phys >> PAGE_SHIFT)
        if page is None:
            raise HypervisorPanic(f"hyp data abort: no hyp_vmemmap entry for PA 0x{phys:x}")
        return page

    def host_page_state(self, pfn: int) -> PageState | None:
        """The host's state of page ``pfn`` (None: not memory), for monitors and the audit;
        declares the read."""
        self.machine.sink.access(P2M, ("host", pfn), False)
        page = self.hyp_vmemmap.get(pfn)
        return page.host_state if page is not None else None

    def hyp_borrowed(self, pfn: int) -> bool:
        """Whether the hypervisor maps page ``pfn`` borrowed from the host (its RX/TX)."""
        self.machine.sink.access(P2M, ("hyp", pfn), False)
        page = self.hyp_vmemmap.get(pfn)
        return page is not None and page.hyp_state is SHARED_BORROWED

    # -- EL2's own accesses ---------------------------------------------------------------------
    def _el2_frames(self, pa: int, size: int, write: bool) -> None:
        """Fault like the MMU: EL2 reaches only what its stage-1 maps (its own pages, host
        pages it borrowed); anything else is a data abort at EL2, which panics the system."""
        mem = self.machine.mem
        end = pa + size
        page = pa & ~(PAGE_SIZE - 1)
        while page < end:
            if page >> PAGE_SHIFT >= MAX_MFN or not mem.frame_at(page).may_access(PKVM_PARTY):
                verb = "writes" if write else "reads"
                raise HypervisorPanic(
                    f"hyp data abort: EL2 {verb} PA 0x{max(pa, page):x}, which it does not map"
                )
            page += PAGE_SIZE

    def hyp_read(self, pa: int, size: int) -> bytes:
        """``size`` bytes EL2 reads at ``pa`` (its VA: the model maps EL2 at PA)."""
        self._el2_frames(pa, size, False)
        return self.machine.mem.read(pa, size, PKVM_PARTY)

    def hyp_read_u16(self, pa: int) -> int:
        return int.from_bytes(self.hyp_read(pa, 2), "little")

    def hyp_read_u32(self, pa: int) -> int:
        return int.from_bytes(self.hyp_read(pa, 4), "little")

    def hyp_read_u64(self, pa: int) -> int:
        return int.from_bytes(self.hyp_read(pa, 8), "little")

    def hyp_write(self, pa: int, data: bytes) -> None:
        self._el2_frames(pa, len(data), True)
        self.machine.mem.write(pa, data, PKVM_PARTY)

    def memcpy(self, dst: int, src: int, size: int) -> None:
        """EL2's memcpy: one read of the source, one write of the destination."""
        if size:
            self.hyp_write(dst, self.hyp_read(src, size))

    # -- the component locks ------------------------------------------------------------------
    def host_lock_component(self) -> None:
        spin_lock(self.host_mmu_lock)

    def host_unlock_component(self) -> None:
        spin_unlock(self.host_mmu_lock)

    def hyp_lock_component(self) -> None:
        spin_lock(self.pkvm_pgd_lock)

    def hyp_unlock_component(self) -> None:
        spin_unlock(self.pkvm_pgd_lock)

    def hyp_assert_lock_held(self, lock: Spinlock) -> None:
        """CONFIG_NVHE_EL2_DEBUG's check that this CPU holds ``lock`` (no scheduling point:
        the lock is the caller's own)."""
        if lock.holder != self.machine.current:
            raise HypervisorPanic(f"{lock.name} not held by {self.machine.current}")

    # -- memory ranges --------------------------------------------------------------------------
    def find_mem_range(self, addr: int) -> tuple[tuple[int, int] | None, int, int]:
        """``(region, range_start, range_end)`` around ``addr`` (byte addresses): the memblock
        region containing it, or None and the gap between regions that does."""
        pfn = addr >> PAGE_SHIFT
        start, end = 0, MAX_MFN << PAGE_SHIFT
        for reg in self.hyp_memory:
            if pfn < reg[0]:
                end = reg[0] << PAGE_SHIFT
                break
            if pfn >= reg[1]:
                start = reg[1] << PAGE_SHIFT
                continue
            return reg, reg[0] << PAGE_SHIFT, reg[1] << PAGE_SHIFT
        return None, start, end

    def addr_is_memory(self, phys: int) -> bool:
        return self.find_mem_range(phys)[0] is not None

    def check_range_allowed_memory(self, start: int, end: int) -> int:
        """[start, end) must lie in one region of memory: -EINVAL when it straddles (a 0-byte
        range starting a region included: ``end - 1`` is then outside), -EPERM when it is not
        memory."""
        reg, r_start, r_end = self.find_mem_range(start)
        if not r_start <= (end - 1) & _M64 < r_end:
            return -EINVAL
        if reg is None:
            return -EPERM
        return 0

    def pfn_range_is_valid(self, pfn: int, nr_pages: int) -> bool:
        """The PFN range lies within the PA range (f71f7afd0a0c, 6.18: robust to overflows; a
        zero-page range passes)."""
        limit = 1 << (self.PA_BITS - PAGE_SHIFT)
        return pfn < limit and (limit - pfn) >= nr_pages

    # -- page state checks and updates ----------------------------------------------------------
    def _host_check_page_state_range(self, addr: int, size: int, state: PageState) -> int:
        """Every page of [addr, addr + size) is memory in host state ``state``, else -EPERM
        (or check_range_allowed_memory's error). Mirrors ``__host_check_page_state_range``."""
        ret = self.check_range_allowed_memory(addr, addr + size)
        if ret:
            return ret
        self.hyp_assert_lock_held(self.host_mmu_lock)
        access = self.machine.sink.access
        for a in range(addr, addr + size, PAGE_SIZE):
            access(P2M, ("host", a >> PAGE_SHIFT), False)
            if self.hyp_phys_to_page(a).host_state is not state:
                return -EPERM
        return 0

    def _host_update_page_state(self, addr: int, size: int, state: PageState) -> None:
        access = self.machine.sink.access
        for a in range(addr, addr + size, PAGE_SIZE):
            access(P2M, ("host", a >> PAGE_SHIFT), True)
            self.hyp_phys_to_page(a).host_state = state

    def _host_set_page_state_range(self, addr: int, size: int, state: PageState) -> int:
        """Mirrors ``__host_set_page_state_range`` (a NOPAGE page is mapped back first, which
        the model's always-mapped stage-2 makes a no-op)."""
        self._host_update_page_state(addr, size, state)
        return 0

    def _hyp_check_page_state_range(self, addr: int, size: int, state: PageState) -> int:
        self.hyp_assert_lock_held(self.pkvm_pgd_lock)
        access = self.machine.sink.access
        for a in range(addr, addr + size, PAGE_SIZE):
            access(P2M, ("hyp", a >> PAGE_SHIFT), False)
            page = self.hyp_vmemmap.get(a >> PAGE_SHIFT)
            if (page.hyp_state if page is not None else NOPAGE) is not state:
                return -EPERM
        return 0

    def _hyp_set_page_state(self, phys: int, state: PageState) -> None:
        """pkvm_create_mappings_locked / kvm_pgtable_hyp_unmap of one page: EL2's own stage-1.
        A page EL2 maps borrowed becomes reachable by it (a machine grant)."""
        self.machine.sink.access(P2M, ("hyp", phys >> PAGE_SHIFT), True)
        page = self.hyp_phys_to_page(phys)
        was_borrowed = page.hyp_state is SHARED_BORROWED
        page.hyp_state = state
        if state is SHARED_BORROWED and not was_borrowed:
            grant(page.frame, PKVM_PARTY)
        elif was_borrowed and state is not SHARED_BORROWED:
            revoke(page.frame, PKVM_PARTY)

    # -- host <-> hyp sharing (the host's FF-A RX/TX) -------------------------------------------
    def _pkvm_host_share_hyp(self, pfn: int) -> int:
        """Share one host page with EL2: host SHARED_OWNED, hyp SHARED_BORROWED (mapped)."""
        phys = hyp_pfn_to_phys(pfn)
        self.host_lock_component()
        self.hyp_lock_component()
        ret = self._host_check_page_state_range(phys, PAGE_SIZE, OWNED)
        if not ret:
            ret = self._hyp_check_page_state_range(phys, PAGE_SIZE, NOPAGE)  # EL2_DEBUG
        if not ret:
            self._hyp_set_page_state(phys, SHARED_BORROWED)
            self._host_set_page_state_range(phys, PAGE_SIZE, SHARED_OWNED)
        self.hyp_unlock_component()  # unlock:
        self.host_unlock_component()
        return ret

    def _pkvm_host_unshare_hyp(self, pfn: int) -> int:
        """Undo :meth:`_pkvm_host_share_hyp`; -EBUSY while EL2 holds a pin on the page."""
        phys = hyp_pfn_to_phys(pfn)
        self.host_lock_component()
        self.hyp_lock_component()
        ret = self._host_check_page_state_range(phys, PAGE_SIZE, SHARED_OWNED)
        if not ret:
            ret = self._hyp_check_page_state_range(phys, PAGE_SIZE, SHARED_BORROWED)
        if not ret:
            self.machine.sink.access(REF, pfn, False)
            if self.hyp_phys_to_page(phys).refcount:
                ret = -EBUSY
        if not ret:
            self._hyp_set_page_state(phys, NOPAGE)
            self._host_set_page_state_range(phys, PAGE_SIZE, OWNED)
        self.hyp_unlock_component()  # unlock:
        self.host_unlock_component()
        return ret

    def hyp_pin_shared_mem(self, start: int, end: int) -> int:
        """Pin [start, end) (EL2 addresses = physical here): every page must be host
        SHARED_OWNED and hyp SHARED_BORROWED; each gets a reference."""
        start &= ~(PAGE_SIZE - 1)
        end = (end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        self.host_lock_component()
        self.hyp_lock_component()
        ret = self._host_check_page_state_range(start, end - start, SHARED_OWNED)
        if not ret:
            ret = self._hyp_check_page_state_range(start, end - start, SHARED_BORROWED)
        if not ret:
            for cur in range(start, end, PAGE_SIZE):
                self.machine.sink.access(REF, cur >> PAGE_SHIFT, True)
                self.hyp_phys_to_page(cur).refcount += 1
        self.hyp_unlock_component()  # unlock:
        self.host_unlock_component()
        return ret

    def hyp_unpin_shared_mem(self, start: int, end: int) -> None:
        start &= ~(PAGE_SIZE - 1)
        end = (end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        self.host_lock_component()
        self.hyp_lock_component()
        for cur in range(start, end, PAGE_SIZE):
            self.machine.sink.access(REF, cur >> PAGE_SHIFT, True)
            page = self.hyp_phys_to_page(cur)
            if page.refcount <= 0:
                raise HypervisorPanic(f"hyp_page_ref_dec on page 0x{page.frame.mfn:x} at 0")
            page.refcount -= 1
        self.hyp_unlock_component()
        self.host_unlock_component()

    # -- host <-> FF-A ------------------------------------------------------------------------
    def _pkvm_host_share_ffa(self, pfn: int, nr_pages: int) -> int:
        """Mark ``nr_pages`` host-OWNED pages SHARED_OWNED: the secure world may have them.

        Newest text (6.18+): the range is checked first (f71f7afd0a0c: the page count's byte
        size must not overflow, the range must lie in the PA range); a page EL2 has pinned
        cannot be shared (HOST_CHECK_NULL_REFCNT, 7.x). A zero-page range is a no-op success."""
        if nr_pages << PAGE_SHIFT >= 1 << 64:  # check_shl_overflow
            return -EINVAL
        if not self.pfn_range_is_valid(pfn, nr_pages):
            return -EINVAL
        phys, size = hyp_pfn_to_phys(pfn), nr_pages << PAGE_SHIFT
        self.host_lock_component()
        ret = self._host_check_page_state_range(phys, size, OWNED)
        if not ret:
            ret = self._host_check_null_refcnt(phys, size)
        if not ret:
            ret = self._host_set_page_state_range(phys, size, SHARED_OWNED)
        self.host_unlock_component()
        return ret

    def _pkvm_host_unshare_ffa(self, pfn: int, nr_pages: int) -> int:
        """Return ``nr_pages`` SHARED_OWNED pages to OWNED (the secure world gave them back)."""
        if nr_pages << PAGE_SHIFT >= 1 << 64:  # check_shl_overflow
            return -EINVAL
        if not self.pfn_range_is_valid(pfn, nr_pages):
            return -EINVAL
        phys, size = hyp_pfn_to_phys(pfn), nr_pages << PAGE_SHIFT
        self.host_lock_component()
        ret = self._host_check_page_state_range(phys, size, SHARED_OWNED)
        if not ret:
            ret = self._host_set_page_state_range(phys, size, OWNED)
        self.host_unlock_component()
        return ret

    def _host_check_null_refcnt(self, phys: int, size: int) -> int:
        """HOST_CHECK_NULL_REFCNT of ``___host_check_page_state_range``: -EPERM for a page
        EL2 holds a reference on."""
        for a in range(phys, phys + size, PAGE_SIZE):
            self.machine.sink.access(REF, a >> PAGE_SHIFT, False)
            if self.hyp_phys_to_page(a).refcount:
                return -EPERM
        return 0

    # -- donations (what makes a page the hypervisor's or a guest's) ----------------------------
    def _pkvm_host_donate_guest(self, pfn: int, nr_pages: int, guest: str) -> int:
        """Give host-OWNED pages to protected guest ``guest`` (a party such as ``"g0"``): the
        host loses them (NOPAGE, unmapped). The model's stand-in for
        ``__pkvm_host_donate_guest``, one page per call there, with the guest's stage-2 left
        out: what matters to FF-A is that the pages stop being the host's."""
        phys, size = hyp_pfn_to_phys(pfn), nr_pages << PAGE_SHIFT
        self.host_lock_component()
        ret = self._host_check_page_state_range(phys, size, OWNED)
        if not ret:
            self._host_set_page_state_range(phys, size, NOPAGE)
            for a in range(phys, phys + size, PAGE_SIZE):
                f = self.hyp_phys_to_page(a).frame
                self.machine.sink.access(MEM, f.mfn, True)
                f.owner = guest
        self.host_unlock_component()
        return ret
