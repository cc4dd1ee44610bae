"""A trace as JSON: every event with its raw fields, plus readable names for calls and results.

The document is ``{"format": "ffasim-trace", "version": 1, "events": [...]}``; each event has
``step``, ``thread``, ``kind``, ``detail`` and ``data`` (lists for tuples; anything that is not a
JSON value as its ``repr``), and calls/returns add ``layer``, ``regs`` (x0..x17) and ``text``
(``FFA_ERROR(DENIED)``). :func:`from_json` reads it back into events that every renderer takes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._common import Event, call_regs, event_text

FORMAT = "ffasim-trace"
VERSION = 1


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return repr(v)


def event_dict(ev: Event) -> dict[str, Any]:
    """One event as a JSON object."""
    out: dict[str, Any] = {
        "step": ev.step,
        "thread": ev.thread,
        "kind": ev.kind,
        "detail": ev.detail,
        "data": _jsonable(ev.data),
    }
    cr = call_regs(ev)
    if cr is not None:
        out["layer"], regs = cr
        out["regs"] = list(regs)
        out["text"] = event_text(ev)
    return out


def render_json(trace: Sequence[Event]) -> str:
    """``trace`` as one JSON document (indented, stable key order)."""
    doc = {"format": FORMAT, "version": VERSION, "events": [event_dict(ev) for ev in trace]}
    return json.dumps(doc, indent=1) + "\n"


@dataclass(frozen=True)
class LoadedEvent:
    """An event read back from JSON: the same fields as the checker's ``TraceEvent``."""

    step: int
    thread: str
    kind: str
    detail: str
    data: tuple[Any, ...] = ()


def _tuples(v: Any) -> Any:
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def from_json(text: str) -> list[LoadedEvent]:
    """Events from :func:`render_json` output; ValueError (one line) for anything else."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not a JSON trace: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f'not an ffasim trace (expected "format": "{FORMAT}")')
    out = []
    for i, item in enumerate(doc.get("events", [])):
        try:
            out.append(
                LoadedEvent(
                    int(item["step"]),
                    str(item["thread"]),
                    str(item["kind"]),
                    str(item["detail"]),
                    _tuples(item.get("data", [])),
                )
            )
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"event {i} of the trace lacks step/thread/kind/detail") from None
    return out
