"""Protocol violations that components report and survive (``sink.violation(kind, msg)``),
other than ownership (which :mod:`.ownership` reports with its own context)."""

from __future__ import annotations

from ..monitor import FINDING_KINDS
from ._base import CallTracking


class ViolationMonitor(CallTracking):
    """Reports every ``violation`` of a kind other than ``ownership``; an unknown kind is
    reported as ``spec`` with the kind in the message (the component's rule still broke)."""

    def violation(self, kind: str, message: str) -> None:
        if kind == "ownership":
            return
        ctx = self.context()
        if kind not in FINDING_KINDS:
            kind, message = "spec", f"{kind}: {message}"
        self.report(kind, message, threads=(ctx,), calls=self.calls_of(ctx))
