"""A trace as Chrome Trace Event JSON, which ui.perfetto.dev and chrome://tracing open.

Process 1 ("contexts") has one track per context: each FF-A call is an ``X`` slice (hypercalls
hold the SMCs they make), and lock operations, blocking, faults, violations and findings are
instants. Process 2 ("locks") has one track per lock with an ``X`` slice per holding, named for
the holder, so a lock kept across a hypercall return shows at a glance; readers holding an
rwlock together get a track each (``ffa_ctx_list_rwlock #2``), since slices on one track must
nest. Time is the event's
position in the trace (one microsecond per event; ``args.step`` keeps the scheduler step):
the checker has no wall clock, and a position keeps every event visible and in order.
Only complete (``X``) slices are used, as Perfetto's JSON importer expects.
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


def render_chrome(trace: Sequence[Event]) -> str:
    """``trace`` as a ``{"traceEvents": [...]}`` JSON document."""
    tids: dict[str, int] = {}
    lock_tids: dict[str, int] = {}
    events: list[dict[str, Any]] = []
    open_calls: dict[str, list[tuple[int, Event]]] = {}
    # Per lock, one slot per simultaneous holder: (start, holder), or None once released.
    held: dict[str, list[tuple[int, str] | None]] = {}

    def lock_track(name: str, slot: int) -> int:
        track = name if slot == 0 else f"{name} #{slot + 1}"
        if track not in lock_tids:
            lock_tids[track] = len(lock_tids) + 1
        return lock_tids[track]

    end = len(trace)

    def tid(name: str) -> int:
        if name not in tids:
            tids[name] = len(tids) + 1
        return tids[name]

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
                stack.append((ts, ev))
            elif stack:
                start, call = stack.pop()
                slice_(
                    event_text(call),
                    CONTEXTS_PID,
                    t,
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
    for name, stack in open_calls.items():
        for start, call in stack:
            slice_(
                event_text(call),
                CONTEXTS_PID,
                tids[name],
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
