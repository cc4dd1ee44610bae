"""A trace as Chrome Trace Event JSON, which ui.perfetto.dev and chrome://tracing open.

Process 1 ("contexts") has up to three tracks per context, one per layer: the guest's
hypercalls (the track named after the context, ``d0v0``), the SMCs made on that context
(``d0v0 smc``: Xen's calls to the SPMC, and a partition's own) and the SPMC's calls into
partitions (``d0v0 sp``). Each FF-A call is an ``X`` slice, and a flow arrow (flow events
``s``/``f``, the ``f`` bound to its enclosing slice) links each call to the call it was made
from: a guest's hypercall to the SMCs Xen makes for it, an SMC to the partition call the SPMC
makes for it. Lock operations, blocking, faults, violations and findings are instants on the
context's own track.

Process 2 ("locks") has one track per lock with an ``X`` slice per holding, named for the
holder, so a lock kept across a hypercall return shows at a glance; readers holding an rwlock
together get a track each (``ffa_ctx_list_rwlock #2``), since slices on one track must nest.
Time is the event's position in the trace (one microsecond per event; ``args.step`` keeps
the scheduler step): the checker has no wall clock, and a position keeps every event visible
and in order. Only complete (``X``) slices are used, as Perfetto's JSON importer expects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ._common import Event, call_regs, event_text

INSTANT_KINDS = frozenset(
    {"lock", "unlock", "block", "wake", "fault", "violation", "finding", "log", "alloc", "free"}
)
CONTEXTS_PID = 1
LOCKS_PID = 2
LAYER_TRACKS = ("hvc", "smc", "sp")
"""The layers that get a track of their own per context, in their order on screen."""
FLOW = {"name": "causes", "cat": "flow"}


def render_chrome(trace: Sequence[Event]) -> str:
    """``trace`` as a ``{"traceEvents": [...]}`` JSON document."""
    tids: dict[str, int] = {}
    lock_tids: dict[str, int] = {}
    events: list[dict[str, Any]] = []
    open_calls: dict[str, list[tuple[int, Event, int]]] = {}  # (start, call, track)
    # Per lock, one slot per simultaneous holder: (start, holder), or None once released.
    held: dict[str, list[tuple[int, str] | None]] = {}

    def lock_track(name: str, slot: int) -> int:
        track = name if slot == 0 else f"{name} #{slot + 1}"
        if track not in lock_tids:
            lock_tids[track] = len(lock_tids) + 1
        return lock_tids[track]

    end = len(trace)

    contexts: list[str] = []

    def tid(context: str, layer: str = "hvc") -> int:
        """The track of ``context``'s calls of ``layer`` (its own track for anything else);
        a context's tracks get consecutive ids, so that they show together."""
        if context not in contexts:
            contexts.append(context)
        i = LAYER_TRACKS.index(layer) if layer in LAYER_TRACKS else 0
        name = context if i == 0 else f"{context} {layer}"
        tids[name] = contexts.index(context) * len(LAYER_TRACKS) + i + 1
        return tids[name]

    flows = 0

    def slice_(name: str, pid: int, t: int, start: int, stop: int, args: dict[str, Any]) -> None:
        events.append(
            {
                "name": name,
                "ph": "X",
                "ts": start,
                "dur": max(stop - start, 1),
                "pid": pid,
                "tid": t,
                "cat": "ffa",
                "args": args,
            }
        )

    for ts, ev in enumerate(trace):
        t = tid(ev.thread)
        cr = call_regs(ev)
        if cr is not None:
            stack = open_calls.setdefault(ev.thread, [])
            if ev.kind == "call":
                track = tid(ev.thread, cr[0])
                if stack:  # made from the call under way on this context: an arrow
                    flows += 1
                    for ph, on in (("s", stack[-1][2]), ("f", track)):
                        flow = {**FLOW, "ph": ph, "id": flows, "ts": ts, "pid": CONTEXTS_PID}
                        events.append({**flow, "tid": on, **({"bp": "e"} if ph == "f" else {})})
                stack.append((ts, ev, track))
            elif stack:
                start, call, track = stack.pop()
                slice_(
                    event_text(call),
                    CONTEXTS_PID,
                    track,
                    start,
                    ts + 1,
                    {"step": call.step, "result": event_text(ev)},
                )
            continue
        if ev.kind in ("lock", "unlock"):
            name = ev.detail
            slots = held.setdefault(name, [])
            if ev.kind == "lock":
                free = next((i for i, s in enumerate(slots) if s is None), len(slots))
                if free == len(slots):
                    slots.append(None)
                slots[free] = (ts, ev.thread)
                lock_track(name, free)
            else:  # the latest holding of this context (a reader may nest)
                mine = [i for i, s in enumerate(slots) if s is not None and s[1] == ev.thread]
                if mine:
                    i = mine[-1]
                    start, holder = slots[i] or (ts, ev.thread)
                    slots[i] = None
                    slice_(holder, LOCKS_PID, lock_track(name, i), start, ts + 1, {"lock": name})
        if ev.kind in INSTANT_KINDS:
            events.append(
                {
                    "name": f"{ev.kind} {ev.detail}" if ev.kind != "finding" else ev.detail,
                    "ph": "i",
                    "s": "g" if ev.kind == "finding" else "t",
                    "ts": ts,
                    "pid": CONTEXTS_PID,
                    "tid": t,
                    "cat": ev.kind,
                    "args": {"step": ev.step},
                }
            )
    # What never returned (a panic, a deadlock) or was never released lasts to the end.
    for stack in open_calls.values():
        for start, call, track in stack:
            slice_(
                event_text(call),
                CONTEXTS_PID,
                track,
                start,
                end + 1,
                {"step": call.step, "result": "(never returned)"},
            )
    for name, slots in held.items():
        for i, slot in enumerate(slots):
            if slot is not None:
                start, holder = slot
                slice_(
                    f"{holder} (never released)",
                    LOCKS_PID,
                    lock_track(name, i),
                    start,
                    end + 1,
                    {"lock": name},
                )
    meta: list[dict[str, Any]] = [
        {
            "name": "process_name",
            "ph": "M",
            "pid": CONTEXTS_PID,
            "tid": 0,
            "ts": 0,
            "args": {"name": "contexts"},
        },
        {
            "name": "process_name",
            "ph": "M",
            "pid": LOCKS_PID,
            "tid": 0,
            "ts": 0,
            "args": {"name": "locks"},
        },
    ]
    for name, n in tids.items():
        meta.append(
            {
                "name": "thread_name",
                "ph": "M",
                "pid": CONTEXTS_PID,
                "tid": n,
                "ts": 0,
                "args": {"name": name},
            }
        )
    for name, n in lock_tids.items():
        meta.append(
            {
                "name": "thread_name",
                "ph": "M",
                "pid": LOCKS_PID,
                "tid": n,
                "ts": 0,
                "args": {"name": name},
            }
        )
    doc = {
        "traceEvents": meta + events,
        "displayTimeUnit": "ns",
        "otherData": {"generator": "ffasim"},
    }
    return json.dumps(doc) + "\n"
