"""The trace renderers on a hand-written trace: text listing, JSON round trip, Mermaid, Chrome."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ffasim import abi
from ffasim.trace import (
    FORMATS,
    for_output,
    from_json,
    render,
    render_chrome,
    render_json,
    render_mermaid,
    render_text,
)


@dataclass(frozen=True)
class Ev:
    step: int
    thread: str
    kind: str
    detail: str
    data: tuple[Any, ...] = ()


PIG = abi.regs(abi.FFA_PARTITION_INFO_GET)
TRACE = [
    Ev(0, "d0v0", "thread-start", "d0v0"),
    Ev(1, "d0v0", "call", "hvc", ("hvc", PIG)),
    Ev(2, "d0v0", "lock", "ffa_spmc_rx_lock"),
    Ev(3, "d0v0", "call", "smc", ("smc", PIG)),
    Ev(4, "d0v0", "ret", "smc", ("smc", abi.success(3, 24))),
    Ev(5, "d1v0", "call", "hvc", ("hvc", PIG)),
    Ev(6, "d1v0", "mem", "xen reads 0x80000"),
    Ev(7, "d1v0", "finding", "assertion: Assertion '!spin_is_locked(&lock)' failed; boom"),
]


def test_text_lists_each_event_with_calls_named_and_nested() -> None:
    out = render_text(TRACE)
    lines = out.splitlines()
    assert lines[1] == "     1  d0v0     call         hvc FFA_PARTITION_INFO_GET"
    assert lines[2] == "     2  d0v0     lock           ffa_spmc_rx_lock"
    assert lines[4] == "     4  d0v0     ret            smc -> FFA_SUCCESS_32(w2=0x3, w3=0x18)"
    assert lines[-1].startswith("     7  d1v0     finding        !! assertion: Assertion")
    assert "xen reads" not in out  # memory accesses are hidden by default
    assert "xen reads" in render_text(TRACE, show_mem=True)


def test_text_projection_keeps_one_context_and_the_finding() -> None:
    out = render_text(TRACE, threads={"d0v0"})
    assert "d1v0     call" not in out and "d0v0     call" in out
    assert "!! assertion" in out
    assert render_text([]) == ""


def test_json_is_valid_and_round_trips_to_the_same_listing() -> None:
    doc = json.loads(render_json(TRACE))
    assert doc["format"] == "ffasim-trace"
    assert doc["events"][1]["text"] == "hvc FFA_PARTITION_INFO_GET"
    assert doc["events"][1]["regs"][0] == abi.FFA_PARTITION_INFO_GET
    back = from_json(render_json(TRACE))
    assert render_text(back) == render_text(TRACE)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", r"^not a JSON trace: "),
        ('{"format": "x"}', r'^not an ffasim trace \(expected "format": "ffasim-trace"\)$'),
        ('{"format": "ffasim-trace", "events": [{}]}', r"^event 0 of the trace lacks "),
    ],
)
def test_json_load_rejects_other_documents_in_one_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_json(text)


def test_mermaid_is_a_sequence_diagram_with_calls_returns_notes_and_finding() -> None:
    out = render_mermaid(TRACE)
    lines = out.splitlines()
    assert lines[0] == "sequenceDiagram"
    assert lines[1:5] == [
        "    participant d0v0",
        "    participant d1v0",
        "    participant Xen",
        "    participant SPMC",
    ]
    assert "    d0v0->>Xen: FFA_PARTITION_INFO_GET" in lines
    assert "    Note over d0v0: lock ffa_spmc_rx_lock" in lines
    assert "    Xen->>SPMC: [d0v0] FFA_PARTITION_INFO_GET" in lines
    assert "    SPMC-->>Xen: [d0v0] FFA_SUCCESS_32(w2=0x3, w3=0x18)" in lines
    i = lines.index("    rect rgb(255, 215, 215)")
    assert lines[i + 1].startswith("    Note over d1v0,Xen: assertion: Assertion")
    assert "boom" in lines[i + 1] and "failed#59; boom" in lines[i + 1]  # ';' is an entity
    assert lines[i + 2] == "    end"


def test_mermaid_partition_call_gets_its_own_participant() -> None:
    req = abi.regs(abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(1, 0x8001))
    trace = [
        Ev(1, "d0v0", "call", "", ("sp", req)),
        Ev(2, "d0v0", "ret", "", ("sp", abi.regs(abi.FFA_MSG_SEND_DIRECT_RESP_32))),
    ]
    out = render_mermaid(trace)
    assert "participant sp8001" in out
    assert "SPMC->>sp8001: [d0v0] FFA_MSG_SEND_DIRECT_REQ_32(w1=0x18001)" in out
    assert "sp8001-->>SPMC: [d0v0] FFA_MSG_SEND_DIRECT_RESP_32" in out


def test_chrome_trace_has_tracks_slices_and_instants() -> None:
    doc = json.loads(render_chrome(TRACE))
    events = doc["traceEvents"]
    for e in events:
        assert {"ph", "ts", "pid", "tid"} <= e.keys()
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"d0v0", "d1v0", "ffa_spmc_rx_lock"} <= names
    slices = {e["name"]: e for e in events if e["ph"] == "X" and e["pid"] == 1}
    smc = slices["smc FFA_PARTITION_INFO_GET"]
    assert (smc["ts"], smc["dur"]) == (3, 2)
    assert smc["args"]["result"] == "smc -> FFA_SUCCESS_32(w2=0x3, w3=0x18)"
    hvc = slices["hvc FFA_PARTITION_INFO_GET"]
    assert hvc["args"]["result"] == "(never returned)"
    held = [e for e in events if e["ph"] == "X" and e["pid"] == 2]
    assert [e["name"] for e in held] == ["d0v0 (never released)"]
    instants = [e for e in events if e["ph"] == "i"]
    assert any(e["name"].startswith("assertion:") and e["s"] == "g" for e in instants)


def test_render_dispatches_on_format_and_rejects_unknown() -> None:
    assert set(FORMATS) == {"text", "json", "mermaid", "chrome"}
    assert render(TRACE, "mermaid") == render_mermaid(TRACE)
    with pytest.raises(ValueError, match=r"^unknown trace format 'svg' \(expected one of: "):
        render(TRACE, "svg")


def test_mermaid_leaves_out_boot_and_firmware_locks_unless_full() -> None:
    boot = [
        Ev(0, "boot", "call", "xen", ("smc", abi.regs(abi.FFA_VERSION, 0x10002))),
        Ev(0, "boot", "ret", "xen", ("smc", abi.regs(0x10002))),
    ]
    inner = [
        Ev(1, "d0v0", "thread-start", "d0v0"),
        Ev(1, "d0v0", "call", "d0v0", ("hvc", PIG)),
        Ev(2, "d0v0", "call", "xen", ("smc", PIG)),
        Ev(3, "d0v0", "lock", "spmc.lock"),
        Ev(4, "d0v0", "unlock", "spmc.lock"),
        Ev(5, "d0v0", "ret", "xen", ("smc", abi.success())),
        Ev(6, "d0v0", "ret", "d0v0", ("hvc", abi.success())),
    ]
    short = render_mermaid(boot + inner)
    assert "    Note over Xen,SPMC: boot and setup: 2 events not shown" in short
    assert "FFA_VERSION" not in short and "spmc.lock" not in short
    assert "participant boot" not in short
    full = render_mermaid(boot + inner, full=True)
    assert "Xen->>SPMC: [boot] FFA_VERSION(w1=0x10002)" in full
    assert "Note over d0v0: lock spmc.lock" in full
    # A finding during boot keeps the boot events.
    with_finding = [*boot, Ev(0, "boot", "finding", "isolation: freed while mapped"), *inner]
    assert "FFA_VERSION" in render_mermaid(with_finding)


_kinds = st.sampled_from(
    [
        "call",
        "ret",
        "lock",
        "unlock",
        "block",
        "wake",
        "fault",
        "log",
        "violation",
        "alloc",
        "free",
        "mem",
        "switch",
        "thread-start",
        "thread-end",
        "finding",
    ]
)
_regs = st.tuples(
    st.sampled_from(
        [
            abi.FFA_VERSION,
            abi.FFA_MEM_SHARE_64,
            abi.FFA_ERROR,
            abi.FFA_SUCCESS_32,
            abi.FFA_MSG_SEND_DIRECT_REQ_32,
            0x12345,
        ]
    ),
    *[st.integers(0, 2**64 - 1)] * 17,
)


@st.composite
def _traces(draw: st.DrawFn) -> list[Ev]:
    out = []
    for step in range(draw(st.integers(0, 30))):
        kind = draw(_kinds)
        thread = draw(st.sampled_from(["boot", "d0v0", "d1v0", "sri"]))
        detail = draw(st.text(max_size=20))
        data: tuple[Any, ...] = ()
        if kind in ("call", "ret"):
            data = (draw(st.sampled_from(["hvc", "smc", "sp"])), draw(_regs))
        out.append(Ev(step, thread, kind, detail, data))
    return out


@settings(max_examples=150, deadline=None)
@given(_traces())
def test_every_renderer_takes_any_trace(trace: list[Ev]) -> None:
    text = render_text(trace, show_mem=True)
    assert len(text.splitlines()) == len(trace)  # one line per event, whatever the details
    assert render_text(from_json(render_json(trace)), show_mem=True) == text
    mermaid = render_mermaid(trace, full=True)
    assert mermaid.startswith("sequenceDiagram\n")
    for line in mermaid.splitlines()[1:]:
        assert line.startswith("    ") and ";" not in re.sub(r"#\w+;", "", line)
    doc = json.loads(render_chrome(trace))
    assert all({"ph", "ts", "pid", "tid"} <= e.keys() for e in doc["traceEvents"])
    slices = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert all(e["dur"] >= 1 for e in slices)
    assert_flows_bind(doc["traceEvents"])


def assert_flows_bind(events: list[dict[str, Any]]) -> None:
    """Every flow is one ``s`` and one ``f`` with the same id; the ``s`` lies inside a slice
    of its track (the call made from), the ``f`` starts one (the call made, ``bp: e``)."""
    slices = [e for e in events if e["ph"] == "X"]
    flows: dict[int, dict[str, dict[str, Any]]] = {}
    for e in events:
        if e["ph"] in ("s", "f"):
            flows.setdefault(e["id"], {})[e["ph"]] = e
    for pair in flows.values():
        start, finish = pair["s"], pair["f"]
        assert finish["bp"] == "e" and start["ts"] == finish["ts"]
        assert any(
            x["tid"] == start["tid"] and x["ts"] < start["ts"] < x["ts"] + x["dur"] for x in slices
        )
        assert any(x["tid"] == finish["tid"] and x["ts"] == finish["ts"] for x in slices)


def test_mermaid_escapes_ampersands_so_no_html_entity_forms() -> None:
    trace = [Ev(0, "d0v0", "finding", "assertion: Assertion '!spin_is_locked(&notif_lock)' failed")]
    (note,) = [line for line in render_mermaid(trace).splitlines() if "Note over" in line]
    assert note == (
        "    Note over d0v0,Xen: assertion: Assertion '!spin_is_locked(#amp;notif_lock)' failed"
    )


def test_chrome_gives_overlapping_readers_of_one_rwlock_a_track_each() -> None:
    lock = "ffa_ctx_list_rwlock"
    trace = [
        Ev(0, "d0v0", "lock", lock),
        Ev(1, "d1v0", "lock", lock),
        Ev(2, "d0v0", "unlock", lock),
        Ev(3, "d0v0", "lock", lock),  # the first track is free again
        Ev(4, "d1v0", "unlock", lock),
        Ev(5, "d0v0", "unlock", lock),
        Ev(6, "d1v0", "lock", lock),  # never released
    ]
    events = json.loads(render_chrome(trace))["traceEvents"]
    tracks = {
        e["tid"]: e["args"]["name"]
        for e in events
        if e["ph"] == "M" and e["name"] == "thread_name" and e["pid"] == 2
    }
    held = sorted(
        (tracks[e["tid"]], e["ts"], e["ts"] + e["dur"], e["name"])
        for e in events
        if e["ph"] == "X" and e["pid"] == 2
    )
    assert held == [
        (lock, 0, 3, "d0v0"),
        (lock, 3, 6, "d0v0"),
        (lock, 6, 8, "d1v0 (never released)"),
        (f"{lock} #2", 1, 5, "d1v0"),
    ]


def test_mermaid_wraps_long_notes_and_cuts_them_after_six_lines() -> None:
    chain = " <- ".join(f"xen/variants/seed_v1.py:{n} function_{n}" for n in range(100, 112))
    trace = [Ev(0, "d0v0", "finding", f"assertion: Assertion 'x' failed (at {chain})")]
    (note,) = [line for line in render_mermaid(trace).splitlines() if "Note over" in line]
    text = note.removeprefix("    Note over d0v0,Xen: ")
    lines = text.split("<br/>")
    assert lines[:2] == [
        "assertion: Assertion 'x' failed (at",
        "xen/variants/seed_v1.py:100 function_100 #lt;-",
    ]
    assert len(lines) == 6 and lines[-1].endswith(" ...")
    assert all(len(line.replace("#lt;", "<")) <= 60 for line in lines)


def test_mermaid_fenced_and_for_markdown_files_only() -> None:
    diagram = render_mermaid(TRACE)
    fenced = render_mermaid(TRACE, fenced=True)
    assert fenced == "```mermaid\n" + diagram + "```\n"
    assert for_output(diagram, "mermaid", "finding.md") == fenced
    assert for_output(diagram, "mermaid", "notes/FINDING.MARKDOWN") == fenced
    assert for_output(fenced, "mermaid", "finding.md") == fenced  # fenced once
    assert for_output(diagram, "mermaid", "finding.mmd") == diagram
    assert for_output(diagram, "mermaid", None) == diagram  # stdout
    text = render_text(TRACE)
    assert for_output(text, "text", "trace.md") == text


def test_chrome_gives_each_layer_a_track_and_links_each_call_to_its_cause() -> None:
    req = abi.regs(abi.FFA_MSG_SEND_DIRECT_REQ_32, abi.pack_target(1, 0x8001))
    resp = abi.regs(abi.FFA_MSG_SEND_DIRECT_RESP_32, abi.pack_target(0x8001, 1))
    trace = [
        Ev(0, "d0v0", "call", "hvc", ("hvc", req)),
        Ev(1, "d0v0", "call", "smc", ("smc", req)),
        Ev(2, "d0v0", "call", "sp", ("sp", req)),
        Ev(3, "d0v0", "ret", "sp", ("sp", resp)),
        Ev(4, "d0v0", "ret", "smc", ("smc", resp)),
        Ev(5, "d0v0", "ret", "hvc", ("hvc", resp)),
        Ev(6, "boot", "call", "smc", ("smc", PIG)),  # Xen's own: caused by no hypercall
        Ev(7, "boot", "ret", "smc", ("smc", abi.success())),
    ]
    events = json.loads(render_chrome(trace))["traceEvents"]
    tracks = {
        e["args"]["name"]: e["tid"]
        for e in events
        if e["ph"] == "M" and e["name"] == "thread_name" and e["pid"] == 1
    }
    assert tracks == {"d0v0": 1, "d0v0 smc": 2, "d0v0 sp": 3, "boot": 4, "boot smc": 5}
    slices = {(e["tid"], e["ts"], e["dur"]) for e in events if e["ph"] == "X"}
    assert slices == {(1, 0, 6), (2, 1, 4), (3, 2, 2), (5, 6, 2)}
    flows = sorted((e["id"], e["ph"], e["tid"], e["ts"]) for e in events if e["ph"] in "sf")
    assert flows == [(1, "f", 2, 1), (1, "s", 1, 1), (2, "f", 3, 2), (2, "s", 2, 2)]
    assert_flows_bind(events)
