"""The platform that everything else runs on: memory, pools, the current context, the sink."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from .events import EventSink
from .locks import RwLock, Spinlock
from .memory import (
    NS_DRAM_BASE_MFN,
    NS_DRAM_FRAMES,
    SECURE_DRAM_BASE_MFN,
    SECURE_DRAM_FRAMES,
    Heap,
    PhysMem,
)


class Machine:
    """One simulated Arm platform.

    ``current`` names the context that runs now (``"d0v1"`` for domain 0's vCPU 1, ``"boot"``
    while Xen probes): lock holders are contexts. ``held`` lists the locks held, in order, so a
    monitor can see what a hypercall leaves locked. ``sink`` receives every event; replace it
    before running to observe or schedule.
    """

    def __init__(self, sink: EventSink | None = None) -> None:
        self.sink: EventSink = sink if sink is not None else EventSink()
        self.current = "boot"
        self.held: list[Spinlock | RwLock] = []
        self.mem = PhysMem(self)
        self.heap = Heap(self, "ns", NS_DRAM_BASE_MFN, NS_DRAM_FRAMES)
        self.secure_heap = Heap(self, "secure", SECURE_DRAM_BASE_MFN, SECURE_DRAM_FRAMES)

    def spinlock(self, name: str) -> Spinlock:
        return Spinlock(self, name)

    def rwlock(self, name: str) -> RwLock:
        return RwLock(self, name)

    def held_by(self, ctx: str) -> list[Spinlock | RwLock]:
        """The locks that context ``ctx`` holds now."""
        out: list[Spinlock | RwLock] = []
        for lock in self.held:
            if isinstance(lock, Spinlock):
                if lock.holder == ctx and lock not in out:
                    out.append(lock)
            elif (lock.writer == ctx or ctx in lock.readers) and lock not in out:
                out.append(lock)
        return out


class Thread(NamedTuple):
    """A body of code that runs as context ``name`` (``"d0v1"``, ``"toolstack"``...): one vCPU's
    work in a scenario, interleaved with the others by the checker."""

    name: str
    body: Callable[[], None]
