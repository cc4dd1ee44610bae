"""leak and spec: what the scenario's finish step (teardown and oracle) says is wrong, plus the
checker's own end-of-execution checks.

The finish step returns problem lines: ``"leak: ..."`` for pages, references, handles or share
states left after teardown, anything else for a guest-visible result its oracle rejects. When
the execution injected a fault, results legitimately change (an SPMC answering DENIED makes the
guest see DENIED), so spec lines are not reported then; leaks still are, since a failure path
must clean up as well as a success path.

The monitor's own checks at the end: locks still held by anyone (a leak of a lock that no
hypercall return exposed, e.g. taken by the teardown timer), and frames still granted to a party
while free (a mapping that outlived its page).
"""

from __future__ import annotations

from ._base import CallTracking, frame_name

LEAK_PREFIX = "leak: "


class ProblemsMonitor(CallTracking):
    """Turns the finish step's problem lines into leak and spec findings."""

    def on_finish(self) -> None:
        ex = self.execution
        for line in list(getattr(ex, "problems", None) or ()):
            if line.startswith(LEAK_PREFIX):
                self.report("leak", line[len(LEAK_PREFIX) :])
            elif not getattr(ex, "faults", None):
                self.report("spec", line)
        m = ex.machine
        held = [lock for lock in m.held]
        if held:
            self.report(
                "leak",
                "locks still held at the end: "
                + ", ".join(f"{lock.name} by {lock.describe_holder()}" for lock in held),
            )
        for mfn in sorted(m.mem.frames):
            f = m.mem.frames[mfn]
            if f.owner is None and any(n > 0 for n in f.grants.values()):
                who = sorted(p for p, n in f.grants.items() if n > 0)
                self.report("leak", f"{frame_name(f)} is free but still mapped by {', '.join(who)}")
