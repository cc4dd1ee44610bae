"""Physical memory in 4 KiB frames, and the page allocator (Xen's heap, the secure pool).

Memory is sparse: a frame costs nothing until it is allocated, and its bytes only once touched,
so a 64 GiB address space is free. Each frame records its owner (a party name such as ``"xen"``,
``"vm1"``, ``"spmc"``, ``"sp8001"``), whether it is secure memory, its page reference count (Xen's
``get_page``/``put_page``) and the parties it is granted to besides its owner (the SPMC mapping a
VM's RX buffer, a partition that retrieved a share). The machine enforces none of this: it
reports every access, and the checker's isolation monitor judges it with :meth:`Frame.may_access`.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from .errors import AccessFault, HypervisorPanic
from .events import HEAP, MEM, REF

if TYPE_CHECKING:
    from .machine import Machine

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = PAGE_SIZE - 1
ADDRESS_BITS = 36  # 64 GiB of physical address space
MAX_MFN = 1 << (ADDRESS_BITS - PAGE_SHIFT)

# Where each pool starts (frame numbers). Normal-world DRAM at 2 GiB, secure DRAM at 224 MiB,
# as on the usual Arm reference platforms.
NS_DRAM_BASE_MFN = 0x80000
NS_DRAM_FRAMES = MAX_MFN - NS_DRAM_BASE_MFN
SECURE_DRAM_BASE_MFN = 0x0E000
SECURE_DRAM_FRAMES = 0x1000  # 16 MiB

_ZERO_PAGE = bytes(PAGE_SIZE)
_new_counter = Counter.__new__


class Frame:
    """One 4 KiB physical frame and its bookkeeping."""

    __slots__ = ("data", "grants", "machine", "mfn", "owner", "pa", "refcount", "secure", "tag")

    def __init__(self, mfn: int, secure: bool, machine: Machine | None = None) -> None:
        self.machine = machine
        """The machine whose sink hears of changes to the frame's owner, grants and
        references (``None`` for a frame built on its own, in tests)."""
        self.mfn = mfn
        self.pa = mfn << PAGE_SHIFT
        """The frame's physical address (fixed, like ``mfn``: read on every buffer access)."""
        self.secure = secure
        self.owner: str | None = None
        self.refcount = 0
        # An empty Counter without Counter.__init__ (which calls update): a guest's RAM is
        # thousands of frames per checker execution, and the full constructor costs 5x more.
        self.grants: Counter[str] = _new_counter(Counter)
        self.tag = ""
        self.data: bytearray | None = None

    @property
    def allocated(self) -> bool:
        return self.owner is not None

    def may_access(self, party: str) -> bool:
        """Whether ``party`` may touch this frame: the hypervisor any allocated normal-world
        frame, anyone else only what it owns or was granted."""
        if self.owner is None:
            return False
        if party == self.owner or self.grants[party] > 0:
            return True
        return party == "xen" and not self.secure

    def __repr__(self) -> str:
        who = self.owner or "free"
        extra = (
            f" +{sorted(p for p, n in self.grants.items() if n)}"
            if any(self.grants.values())
            else ""
        )
        return f"<frame 0x{self.mfn:x} {who}{extra}{' ' + self.tag if self.tag else ''}>"


class PhysMem:
    """Byte-addressable physical memory; every access is reported to the machine's sink."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.frames: dict[int, Frame] = {}

    def frame(self, mfn: int) -> Frame:
        """The frame ``mfn`` (created free on first use)."""
        f = self.frames.get(mfn)
        if f is None:
            if not 0 <= mfn < MAX_MFN:
                raise AccessFault("bus", mfn << PAGE_SHIFT, PAGE_SIZE, "outside physical memory")
            secure = SECURE_DRAM_BASE_MFN <= mfn < SECURE_DRAM_BASE_MFN + SECURE_DRAM_FRAMES
            f = self.frames[mfn] = Frame(mfn, secure, self.machine)
        return f

    def frame_at(self, pa: int) -> Frame:
        return self.frame(pa >> PAGE_SHIFT)

    def read(self, pa: int, size: int, party: str) -> bytes:
        """``size`` bytes from physical address ``pa``, as ``party`` reads them."""
        if size <= 0:
            return b""
        sink = self.machine.sink
        off = pa & PAGE_MASK
        if off + size <= PAGE_SIZE:
            # The common case, one frame: the same single event as the loop below reports.
            mfn = pa >> PAGE_SHIFT
            f = self.frames.get(mfn)
            if f is None:
                f = self.frame(mfn)
            sink.mem_access(party, f, off, size, False)
            data = f.data
            if data is None:
                return _ZERO_PAGE[off : off + size]
            if size < 512:
                return bytes(data[off : off + size])  # two small copies cost less than a view
            return bytes(memoryview(data)[off : off + size])
        out = []
        while size:
            f = self.frame(pa >> PAGE_SHIFT)
            off = pa & PAGE_MASK
            n = min(size, PAGE_SIZE - off)
            sink.mem_access(party, f, off, n, False)
            data = f.data
            # One copy per piece: slicing a memoryview does not copy, bytes() does once.
            out.append(
                _ZERO_PAGE[off : off + n]
                if data is None
                else bytes(memoryview(data)[off : off + n])
            )
            pa += n
            size -= n
        return out[0] if len(out) == 1 else b"".join(out)

    def write(self, pa: int, data: bytes | bytearray | memoryview, party: str) -> None:
        """Write ``data`` at physical address ``pa`` as ``party``."""
        sink = self.machine.sink
        off = pa & PAGE_MASK
        if (type(data) is bytes or type(data) is bytearray) and 0 < len(data) <= PAGE_SIZE - off:
            # The common case, bytes within one frame: the same single event as the loop.
            mfn = pa >> PAGE_SHIFT
            f = self.frames.get(mfn)
            if f is None:
                f = self.frame(mfn)
            sink.mem_access(party, f, off, len(data), True)
            if f.data is None:
                f.data = bytearray(PAGE_SIZE)
            f.data[off : off + len(data)] = data
            return
        view = memoryview(data)
        pos = 0
        total = len(view)
        while pos < total:
            f = self.frame(pa >> PAGE_SHIFT)
            off = pa & PAGE_MASK
            n = min(total - pos, PAGE_SIZE - off)
            sink.mem_access(party, f, off, n, True)
            if f.data is None:
                f.data = bytearray(PAGE_SIZE)
            f.data[off : off + n] = view[pos : pos + n]
            pa += n
            pos += n

    def fill(self, pa: int, value: int, size: int, party: str) -> None:
        """Set ``size`` bytes at ``pa`` to ``value``."""
        self.write(pa, bytes([value & 0xFF]) * size, party)


class Heap:
    """A page allocator over one pool of frames, with injectable allocation failure.

    Freed frames are reused first (last freed, first reused), so a use after free meets its new
    owner soon, deterministically.
    """

    def __init__(self, machine: Machine, name: str, base_mfn: int, frames: int) -> None:
        self.machine = machine
        self.name = name
        self.base = base_mfn
        self.limit = base_mfn + frames
        self.next_mfn = base_mfn
        self.free_list: list[int] = []
        self.in_use = 0

    def alloc_page(self, owner: str, site: str = "", tag: str = "") -> Frame | None:
        """One zeroed frame for ``owner``, or ``None`` when the pool is empty or the checker
        injects a failure at ``alloc:<site>``."""
        sink = self.machine.sink
        if site and sink.fault("alloc:" + site, (1,)) is not None:
            return None
        sink.access(HEAP, self.name, True)
        if self.free_list:
            mfn = self.free_list.pop()
        elif self.next_mfn < self.limit:
            mfn = self.next_mfn
            self.next_mfn += 1
        else:
            return None
        f = self.machine.mem.frame(mfn)
        sink.access(MEM, mfn, True)
        f.owner = owner
        f.tag = tag
        f.data = None
        f.refcount = 0
        self.in_use += 1
        sink.page_alloc(f)
        return f

    def alloc_contiguous(self, count: int, owner: str, tag: str = "") -> list[Frame] | None:
        """``count`` physically contiguous frames (guest RAM), never from the free list."""
        if self.next_mfn + count > self.limit:
            return None
        frames = []
        frame = self.machine.mem.frame
        sink = self.machine.sink
        sink.access(HEAP, self.name, True)
        page_alloc = sink.page_alloc
        access = sink.access
        for mfn in range(self.next_mfn, self.next_mfn + count):
            f = frame(mfn)
            access(MEM, mfn, True)
            self.next_mfn = mfn + 1
            f.owner = owner
            f.tag = tag
            f.data = None
            f.refcount = 0
            self.in_use += 1
            page_alloc(f)
            frames.append(f)
        return frames

    def free_page(self, f: Frame) -> None:
        """Return ``f`` to the pool. Freeing a free frame panics (Xen's heap BUGs on it)."""
        sink = self.machine.sink
        sink.access(HEAP, self.name, True)
        sink.access(MEM, f.mfn, True)
        if f.owner is None:
            raise HypervisorPanic(f"free of free page 0x{f.mfn:x}")
        sink.page_free(f)
        f.owner = None
        f.tag = ""
        f.refcount = 0
        self.in_use -= 1
        self.free_list.append(f.mfn)


def _declare(f: Frame, kind: str) -> None:
    """Tell the machine's sink that the current step changes ``f``'s ``kind`` state."""
    if f.machine is not None:
        f.machine.sink.access(kind, f.mfn, True)


def get_page(f: Frame) -> None:
    """Take a reference on ``f`` (Xen's ``get_page``)."""
    _declare(f, REF)
    f.refcount += 1


def put_page(f: Frame) -> None:
    """Drop a reference on ``f``; dropping one that was never taken panics."""
    _declare(f, REF)
    if f.refcount <= 0:
        raise HypervisorPanic(f"put_page on 0x{f.mfn:x} with no reference")
    f.refcount -= 1


def grant(f: Frame, party: str) -> None:
    """Let ``party`` see ``f`` (a mapping it was given); grants nest."""
    _declare(f, MEM)
    f.grants[party] += 1


def revoke(f: Frame, party: str) -> None:
    """Undo one :func:`grant` of ``f`` to ``party``."""
    _declare(f, MEM)
    if f.grants[party] > 0:
        f.grants[party] -= 1
