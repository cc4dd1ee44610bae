"""A trace as a Mermaid ``sequenceDiagram``: what to paste in an issue or a review.

Participants are the contexts (vCPUs such as ``d0v0``, then ``boot``, ``toolstack``, ``sri``...)
in order of appearance, then ``Xen``, the ``SPMC`` and the partitions it calls. A guest's
hypercall is an arrow from its vCPU to Xen; an SMC an arrow from Xen (or from the partition that
issues it) to the SPMC, labelled with the context it runs on; results come back as dashed
arrows. Lock operations, blocking, injected faults and violations are notes on the context;
the finding is a red box.

A diagram is for reading, in a Markdown preview as much as in the Mermaid editor: every note and
label is wrapped at :data:`WRAP` characters (Mermaid's ``<br/>``) and cut after
:data:`MAX_LINES` lines, since Mermaid sizes a note to its longest line and a finding's message
with its call chain would otherwise be a box several screens wide. ``fenced=True`` puts the
diagram in a fenced ``mermaid`` block, which GitHub, GitLab and most Markdown viewers render
as is (:func:`ffasim.trace.for_output` does so for files named ``*.md``).

It also leaves out what rarely matters: the boot probe and the scenario's sequential setup
(everything before the first thread starts, unless the finding happened there) and the SPMC's
own locking inside an SMC. ``full=True`` keeps everything.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from .. import abi
from ._common import Event, call_regs, call_text

NOTE_KINDS: dict[str, str] = {
    "lock": "lock",
    "unlock": "unlock",
    "block": "waits for",
    "fault": "fault",
    "violation": "violation",
}
"""Events shown as notes on their context, with the word that introduces them."""

FINDING_COLOUR = "rgb(255, 215, 215)"

WRAP = 60
"""Characters per line of a note or label: about as wide as the participant columns of a
two-vCPU diagram, so that a note does not push the columns apart."""

MAX_LINES = 6
"""Lines kept of a wrapped note or label; the rest is cut with an ellipsis (the full text is
in the text and JSON renderings of the same trace)."""


_ESCAPES = str.maketrans({"#": "#35;", ";": "#59;", "<": "#lt;", ">": "#gt;", "&": "#amp;"})
"""``&`` too: the browser decodes the label as HTML, where ``&not`` (in ``&notif_lock``) is
an entity even without its semicolon."""


def _clean(text: str) -> str:
    """Make ``text`` safe inside a Mermaid message or note, and short enough to read: wrapped
    at :data:`WRAP`, at most :data:`MAX_LINES` lines joined by ``<br/>``, and the characters
    that end a statement or start markup as Mermaid entity codes (escaped line by line, after
    wrapping, so that the ``<br/>`` stay markup and the codes stay intact)."""
    one_line = " ".join(text.split())  # every line or page break becomes a space
    lines = textwrap.wrap(one_line, WRAP, break_long_words=False, break_on_hyphens=False) or [""]
    if len(lines) > MAX_LINES:
        last = lines[MAX_LINES - 1]
        while len(last) > WRAP - 4 and " " in last:
            last = last.rsplit(" ", 1)[0]
        lines = [*lines[: MAX_LINES - 1], last + " ..."]
    return "<br/>".join(ln.replace("%%", "% %").translate(_ESCAPES) for ln in lines)


def _sp_participant(regs: tuple[int, ...]) -> str:
    """The partition a direct request or framework message targets (``sp8001``)."""
    return f"sp{abi.ffa_receiver(regs[1]):04x}"


def _first_shown(trace: Sequence[Event]) -> int:
    """Index of the first event worth drawing: the first thread start, unless a finding
    comes before it."""
    for i, ev in enumerate(trace):
        if ev.kind == "finding":
            return 0
        if ev.kind == "thread-start":
            return i
    return 0


def render_mermaid(trace: Sequence[Event], *, full: bool = False, fenced: bool = False) -> str:
    """``trace`` as a ``sequenceDiagram`` (see the module docstring for what ``full`` adds);
    ``fenced``: inside a Markdown fenced ``mermaid`` block."""
    contexts: list[str] = []
    partitions: list[str] = []
    body: list[str] = []
    stacks: dict[str, list[tuple[str, str]]] = {}
    start = 0 if full else _first_shown(trace)
    if start:
        body.append(f"    Note over Xen,SPMC: boot and setup: {start} events not shown")

    def ctx(name: str) -> str:
        if name not in contexts:
            contexts.append(name)
        return name

    for ev in trace[start:]:
        cr = call_regs(ev)
        if cr is not None:
            layer, regs = cr
            stack = stacks.setdefault(ev.thread, [])
            if ev.kind == "call":
                if layer == "hvc":
                    src, dst = ctx(ev.thread), "Xen"
                    label = call_text(layer, regs)
                elif layer == "sp":
                    src, dst = "SPMC", _sp_participant(regs)
                    if dst not in partitions:
                        partitions.append(dst)
                    label = f"[{ev.thread}] {call_text(layer, regs)}"
                else:  # smc: from Xen, or from the partition that is running
                    caller = stack[-1][1] if stack and stack[-1][1].startswith("sp") else "Xen"
                    src, dst = caller, "SPMC"
                    label = f"[{ev.thread}] {call_text(layer, regs)}"
                stack.append((src, dst))
                body.append(f"    {src}->>{dst}: {_clean(label)}")
            else:
                src, dst = stack.pop() if stack else ("Xen", "SPMC")
                label = abi.describe(regs)
                if src != ev.thread:
                    label = f"[{ev.thread}] {label}"
                body.append(f"    {dst}-->>{src}: {_clean(label)}")
            continue
        if ev.kind in NOTE_KINDS:
            in_firmware = any(dst != "Xen" for _, dst in stacks.get(ev.thread, ()))
            if in_firmware and ev.kind in ("lock", "unlock") and not full:
                continue
            body.append(
                f"    Note over {ctx(ev.thread)}: {NOTE_KINDS[ev.kind]} {_clean(ev.detail)}"
            )
        elif ev.kind == "finding":
            body.append(f"    rect {FINDING_COLOUR}")
            body.append(f"    Note over {ctx(ev.thread)},Xen: {_clean(ev.detail)}")
            body.append("    end")
    head = ["sequenceDiagram"]
    for name in [*contexts, "Xen", "SPMC", *partitions]:
        head.append(f"    participant {name}")
    diagram = "\n".join(head + body) + "\n"
    return fence(diagram) if fenced else diagram


def fence(diagram: str) -> str:
    """``diagram`` in a Markdown fenced ``mermaid`` block (unchanged if it already is)."""
    return diagram if diagram.startswith("```") else f"```mermaid\n{diagram}```\n"
