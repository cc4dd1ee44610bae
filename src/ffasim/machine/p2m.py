"""Per-domain stage-2 translation (IPA to frame), with Xen's p2m types.

Guest RAM is mapped ``p2m_ram_rw``; anything else a scenario maps (a grant, an MMIO window) gets
another type, which FF-A code must refuse to share. ``get_page_from_gfn`` takes a page reference
as Xen's does, and the caller must ``put_page`` it.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from .events import P2M as P2M_KEY
from .memory import PAGE_SHIFT, Frame, get_page

if TYPE_CHECKING:
    from .machine import Machine


class P2MType(enum.Enum):
    ram_rw = "p2m_ram_rw"
    ram_ro = "p2m_ram_ro"
    mmio_direct = "p2m_mmio_direct_dev"
    grant_map_rw = "p2m_grant_map_rw"
    invalid = "p2m_invalid"


class P2M:
    """One domain's stage-2 table."""

    def __init__(self, machine: Machine, owner: str) -> None:
        self.machine = machine
        self.owner = owner
        self.entries: dict[int, tuple[Frame, P2MType]] = {}

    def map(self, gfn: int, frame: Frame, t: P2MType = P2MType.ram_rw) -> None:
        self.machine.sink.access(P2M_KEY, self.owner, True)
        self.entries[gfn] = (frame, t)

    def unmap(self, gfn: int) -> None:
        self.machine.sink.access(P2M_KEY, self.owner, True)
        self.entries.pop(gfn, None)

    def clear(self) -> None:
        """Unmap everything (the domain is freed)."""
        self.machine.sink.access(P2M_KEY, self.owner, True)
        self.entries.clear()

    def lookup(self, gfn: int) -> tuple[Frame, P2MType] | None:
        self.machine.sink.access(P2M_KEY, self.owner, False)
        return self.entries.get(gfn)

    def translate(self, ipa: int) -> int | None:
        """The physical address behind ``ipa``, or ``None`` when nothing is mapped there."""
        self.machine.sink.access(P2M_KEY, self.owner, False)
        e = self.entries.get(ipa >> PAGE_SHIFT)
        if e is None:
            return None
        return e[0].pa | (ipa & ((1 << PAGE_SHIFT) - 1))


def get_page_from_gfn(p2m: P2M, gfn: int) -> tuple[Frame, P2MType] | None:
    """The frame and type at ``gfn`` with a reference taken, or ``None`` if unmapped."""
    p2m.machine.sink.access(P2M_KEY, p2m.owner, False)
    e = p2m.entries.get(gfn)
    if e is None:
        return None
    get_page(e[0])
    return e
