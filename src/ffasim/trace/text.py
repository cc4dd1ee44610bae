"""A readable listing of a trace: one line per event, calls indented by nesting depth.

::

     12  d0v0       call    hvc FFA_PARTITION_INFO_GET
     13  d0v0       lock      ffa_spmc_rx_lock
     19  d1v0       finding !! assertion: Assertion '!spin_is_locked(&lock)' failed

``threads`` projects the trace on some contexts (the per-actor view TLA+ users ask for); the
finding lines are always kept, since they are what the trace is for.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ._common import Event, event_text

HIDDEN_BY_DEFAULT: frozenset[str] = frozenset({"mem"})
"""Kinds left out unless asked for: memory accesses, which outnumber everything else."""


def render_text(
    trace: Sequence[Event],
    threads: Collection[str] | None = None,
    *,
    show_mem: bool = False,
) -> str:
    """The listing of ``trace``; only the events of ``threads`` when given."""
    depth: dict[str, int] = {}
    width = max([len(ev.thread) for ev in trace] + [7])
    lines: list[str] = []
    for ev in trace:
        d = depth.get(ev.thread, 0)
        if ev.kind == "ret":
            d = max(d - 1, 0)
            depth[ev.thread] = d
        elif ev.kind == "call":
            depth[ev.thread] = d + 1
        if ev.kind != "finding":
            if threads is not None and ev.thread not in threads:
                continue
            if ev.kind in HIDDEN_BY_DEFAULT and not show_mem:
                continue
        text = " ".join(event_text(ev).splitlines())  # one event, one line
        if ev.kind == "finding":
            text = "!! " + text
        lines.append(f"{ev.step:>6}  {ev.thread:<{width}}  {ev.kind:<12} {'  ' * d}{text}")
    return "\n".join(lines) + ("\n" if lines else "")
