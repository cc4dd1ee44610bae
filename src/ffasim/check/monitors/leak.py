"""leak: what is left behind at the end of an execution, beyond what the scenario's finish step
reports.

The finish step (teardown and oracle) returns problem lines, which the execution itself turns
into ``leak`` findings (``"leak: ..."``) and ``spec`` findings (the rest); the runner drops the
spec lines of executions that injected a fault, since an injected SPMC error legitimately
changes what guests see (see :func:`ffasim.scenario.scenario_program`). This monitor adds
the checks that need no oracle, after the finish step ran:

- a lock still held by anyone (a leak no hypercall return exposed: taken by the teardown timer,
  the toolstack or the SRI tasklet), unless another finding already names it;
- a frame that is free but still granted to a party (a mapping that outlived its page).
"""

from __future__ import annotations

from ._base import CallTracking, frame_name

LEAK_PREFIX = "leak: "
"""How the finish step's leak lines start (the rest are spec lines)."""


class LeakMonitor(CallTracking):
    """End-of-execution checks for locks and mappings left behind."""

    def on_finish(self) -> None:
        m = self.execution.machine
        # Locks another finding of this execution already names (a lock-leak, the oracle's
        # own leak line) are not reported twice.
        said = " ".join(f.message for f in getattr(self.execution, "findings", ()))
        held = [lock for lock in m.held if lock.name not in said]
        if held:
            self.report(
                "leak",
                "locks still held at the end: "
                + ", ".join(f"{lock.name} by {lock.describe_holder()}" for lock in held),
            )
        frames = m.mem.frames
        # Few frames were ever granted: filter first, then sort those (the order of reports).
        granted = [mfn for mfn, f in frames.items() if f.grants and f.owner is None]
        for mfn in sorted(granted):
            f = frames[mfn]
            if any(n > 0 for n in f.grants.values()):
                who = sorted(p for p, n in f.grants.items() if n > 0)
                self.report("leak", f"{frame_name(f)} is free but still mapped by {', '.join(who)}")
