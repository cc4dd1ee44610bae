"""isolation: a party touching a page it neither owns nor was given, or a page freed while
another party still maps it.

The machine lets every access through and reports it; this monitor judges each one with
:meth:`Frame.may_access` (Xen may touch any allocated normal-world frame; everyone else only what
it owns or was granted; nobody a free frame). Freeing a frame that is still granted (the SPMC
still maps it as an RX/TX buffer, a partition still has it retrieved) is the same breach one
step earlier: the next owner's data becomes visible to the old mapper (seed defect 4,
``ffa_rxtx_spmc_destroy`` freeing the pages before FFA_RXTX_UNMAP).
"""

from __future__ import annotations

from ...machine import Frame
from ._base import CallTracking, frame_name, span


class IsolationMonitor(CallTracking):
    """Reports out-of-bounds accesses and frees of frames that are still mapped elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.reported: set[tuple[str, int]] = set()

    def page_free(self, frame: Frame) -> None:
        if not frame.grants:  # the common case: never granted to anyone
            return
        mappers = sorted(p for p, n in frame.grants.items() if n > 0 and p != frame.owner)
        if not mappers or ("free", frame.mfn) in self.reported:
            return
        self.reported.add(("free", frame.mfn))
        ctx = self.context()
        self.report(
            "isolation",
            f"{frame_name(frame)} freed by {ctx} while {', '.join(mappers)} still "
            f"map{'s' if len(mappers) == 1 else ''} it",
            threads=(ctx,),
            calls=self.calls_of(ctx),
        )

    def mem_access(self, party: str, frame: Frame, offset: int, size: int, write: bool) -> None:
        if frame.may_access(party) or (party, frame.mfn) in self.reported:
            return
        self.reported.add((party, frame.mfn))
        ctx = self.context()
        state = "a free frame" if frame.owner is None else "a frame it neither owns nor was given"
        self.report(
            "isolation",
            f"{party} {'writes' if write else 'reads'} {span(offset, size)} of "
            f"{frame_name(frame)}: {state} ({self.where(ctx)})",
            threads=(ctx,),
            calls=self.calls_of(ctx),
        )
