"""double-fetch: the hypervisor reading the same guest-writable bytes twice in one hypercall.

A guest's other vCPUs can rewrite its memory at any time, so a value the mediator reads twice
(once to validate, once to use) may differ between the reads: Xen reads descriptors once into a
private copy for this reason (``read_mem_transaction``, style rule 6). The monitor records, per
context and hypercall, the byte ranges Xen read from frames a domain owns; a second read that
overlaps one of them is a finding, whether or not a racing vCPU actually changed the bytes. A
write by Xen to the same bytes in between (Xen filling the guest's RX buffer, then reading its
own data back) resets the range, since those bytes are Xen's answer, not guest input.
"""

from __future__ import annotations

from ...machine import Frame
from ._base import CallTracking, frame_name, is_guest_party, span


class DoubleFetchMonitor(CallTracking):
    """Reports the first overlapping re-read of guest memory by Xen within one hypercall."""

    def __init__(self) -> None:
        super().__init__()
        # ctx -> mfn -> [(offset, size, step)] read since the hypercall began
        self.reads: dict[str, dict[int, list[tuple[int, int, int]]]] = {}
        self.reported: set[tuple[str, str, int]] = set()

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        super().call(layer, caller, args)
        if layer == "hvc":
            self.reads[self.context(caller)] = {}

    def ret(self, layer: str, caller: str, result: tuple[int, ...]) -> None:
        if layer == "hvc":
            self.reads.pop(self.context(caller), None)
        super().ret(layer, caller, result)

    def mem_access(self, party: str, frame: Frame, offset: int, size: int, write: bool) -> None:
        if party != "xen" or not is_guest_party(frame.owner):
            return
        ctx = self.context()
        per_frame = self.reads.get(ctx)
        if per_frame is None:  # not inside a hypercall
            return
        ranges = per_frame.setdefault(frame.mfn, [])
        end = offset + size
        if write:
            # Xen's own bytes now: forget exactly [offset, end), keeping what a read range
            # has on either side of it.
            kept = []
            for off, n, first in ranges:
                if off < offset:
                    kept.append((off, min(n, offset - off), first))
                if off + n > end:
                    kept.append((max(off, end), off + n - max(off, end), first))
            ranges[:] = kept
            return
        step = self.execution.step
        for off, n, first in ranges:
            lo, hi = max(off, offset), min(off + n, end)
            if lo < hi:
                name = self.current_call(ctx) or "?"
                key = (ctx, name, frame.mfn)
                if key not in self.reported:
                    self.reported.add(key)
                    self.report(
                        "double-fetch",
                        f"xen reads {span(lo, hi - lo)} of guest-writable {frame_name(frame)} "
                        f"twice in {ctx}'s {name} (steps {first} and {step})",
                        threads=(ctx,),
                        calls=(f"{ctx} {name}",),
                    )
                return
        ranges.append((offset, size, step))
