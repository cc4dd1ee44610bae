"""The call trace of ``ffasim run``: a sink that records every FF-A call as a tree (the SPMC
calls a guest call caused are its children), and the one-line text of each call and answer.

Imported by the ``run`` command when it runs, not when the CLI starts: it needs the model.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from .. import abi, desc
from ..machine import EventSink, Machine

_CALL_COLUMN = 48


# ---------------------------------------------------------------------------------------------
# Recording


@dataclass
class CallNode:
    """One call of the trace: who made it, through which layer, what it got, what it caused."""

    layer: str
    """``"hvc"`` (guest to Xen), ``"smc"`` (to the SPMC), ``"sp"`` (SPMC to a partition)."""
    caller: str
    context: str
    """The context running when the call was made (``"d0v1"``; the caller may be ``"xen"``)."""
    args: tuple[int, ...]
    result: tuple[int, ...] | None = None
    children: list[CallNode] = field(default_factory=list)
    phase: str = ""


@dataclass(frozen=True)
class _TraceEvent:
    """An event in the shape :mod:`ffasim.trace` renders."""

    step: int
    thread: str
    kind: str
    detail: str
    data: tuple[Any, ...] = ()


class RunSink(EventSink):
    """Records calls as a tree (a call made before the previous one returned is its child),
    and the flat event list :mod:`ffasim.trace` renders."""

    def __init__(self) -> None:
        self.machine: Machine | None = None
        self.roots: list[CallNode] = []
        self.stack: list[CallNode] = []
        self.events: list[_TraceEvent] = []
        self.phase = "boot"

    def _ctx(self) -> str:
        return self.machine.current if self.machine is not None else "boot"

    def call(self, layer: str, caller: str, args: tuple[int, ...]) -> None:
        ctx = self._ctx()
        phase = "boot" if ctx == "boot" else self.phase
        node = CallNode(layer, caller, ctx, tuple(args), phase=phase)
        (self.stack[-1].children if self.stack else self.roots).append(node)
        self.stack.append(node)
        self.events.append(
            _TraceEvent(len(self.events), node.context, "call", "", (layer, tuple(args)))
        )

    def ret(self, layer: str, caller: str, result: tuple[int, ...]) -> None:
        if self.stack:
            self.stack.pop().result = tuple(result)
        self.events.append(
            _TraceEvent(len(self.events), self._ctx(), "ret", "", (layer, tuple(result)))
        )

    def log(self, ctx: str, text: str) -> None:
        self.events.append(_TraceEvent(len(self.events), self._ctx(), "log", f"{ctx}: {text}"))

    def thread_event(self, kind: str, name: str) -> None:
        """A thread starting or ending, as the checker's traces mark them: the renderers use
        the first start to tell the boot and setup from the scenario proper."""
        self.events.append(_TraceEvent(len(self.events), name, kind, name))

    def violation(self, kind: str, message: str) -> None:
        self.events.append(
            _TraceEvent(len(self.events), self._ctx(), "violation", message, (kind,))
        )


# ---------------------------------------------------------------------------------------------
# Formatting


def _hex(v: int) -> str:
    return f"0x{v:x}"


def call_text(node: CallNode) -> str:
    """``FFA_VERSION(1.2)``, ``FFA_MSG_SEND_DIRECT_REQ_32(1->0x8001, 0x1, 0x2)``: the function
    and the arguments that matter for it."""
    a = node.args
    fid = a[0] & abi.MASK32
    name = abi.name(fid)
    if fid == abi.FFA_VERSION:
        args = [abi.version_str(a[1])]
    elif fid in (abi.FFA_RXTX_MAP_32, abi.FFA_RXTX_MAP_64):
        args = [f"tx={_hex(a[1])}", f"rx={_hex(a[2])}", f"pages={a[3]}"]
    elif fid in (
        abi.FFA_MSG_SEND_DIRECT_REQ_32,
        abi.FFA_MSG_SEND_DIRECT_REQ_64,
        abi.FFA_MSG_SEND_DIRECT_RESP_32,
        abi.FFA_MSG_SEND_DIRECT_RESP_64,
    ):
        pair = f"{_hex(abi.ffa_sender(a[1]))}->{_hex(abi.ffa_receiver(a[1]))}"
        is_framework, msg_type = desc.framework_msg(a[2])
        if is_framework:
            # VM created/destroyed (4, 6) name the VM in w5; their responses (5, 7) a status.
            args = [pair, desc.framework_msg_name(a[2])]
            if msg_type in (abi.FFA_MSG_SEND_VM_CREATED, abi.FFA_MSG_SEND_VM_DESTROYED):
                args.append(f"vm={_hex(a[5] & 0xFFFF)}")
            elif msg_type in (abi.FFA_MSG_RESP_VM_CREATED, abi.FFA_MSG_RESP_VM_DESTROYED):
                args.append(f"status={abi.error_name(a[3])}")
        else:
            words = list(a[3:8])
            while words and not words[-1]:
                words.pop()
            args = [pair] + ([f"flags={_hex(a[2])}"] if a[2] else []) + [_hex(w) for w in words]
    elif fid in (
        abi.FFA_MEM_SHARE_32,
        abi.FFA_MEM_SHARE_64,
        abi.FFA_MEM_LEND_32,
        abi.FFA_MEM_LEND_64,
        abi.FFA_MEM_DONATE_32,
        abi.FFA_MEM_DONATE_64,
        abi.FFA_MEM_RETRIEVE_REQ_32,
        abi.FFA_MEM_RETRIEVE_REQ_64,
    ):
        args = [f"len={a[1]}"] + ([f"frag={a[2]}"] if a[2] != a[1] else [])
    elif fid == abi.FFA_MEM_RECLAIM:
        args = [f"handle={_hex(abi.make_handle(a[1], a[2]))}"] + ([f"flags={a[3]}"] if a[3] else [])
    elif fid == abi.FFA_PARTITION_INFO_GET:
        uuid = abi.uuid_from_regs32(*a[1:5])
        args = ["nil" if uuid == abi.NIL_UUID else abi.uuid_str(uuid)]
        if a[5]:
            args.append("count" if a[5] == 1 else f"flags={_hex(a[5])}")
    elif fid in (abi.FFA_RX_RELEASE, abi.FFA_RX_ACQUIRE):
        args = [str(a[1] & 0xFFFF)]
    else:
        args = [f"{_hex(v)}" for v in a[1:8]]
        while args and args[-1] == "0x0":
            args.pop()
    return f"{name}({', '.join(args)})"


_DIRECT_RESP = (
    abi.FFA_MSG_SEND_DIRECT_RESP_32,
    abi.FFA_MSG_SEND_DIRECT_RESP_64,
)


def result_text(node: CallNode) -> str:
    """The answer by name: ``1.2``, ``FFA_ERROR(DENIED)``, ``FFA_SUCCESS(handle=0x...)``."""
    r = node.result
    if r is None:
        return "(no answer: the run stopped here)"
    fid = node.args[0] & abi.MASK32
    if abi.is_error(r):
        return abi.describe(r)
    if fid == abi.FFA_VERSION:
        if (r[0] & abi.MASK32) == abi.MASK32:
            return "NOT_SUPPORTED"
        return abi.version_str(r[0])
    if r[0] == abi.MASK64:
        return "SMCCC NOT_SUPPORTED"
    if (r[0] & abi.MASK32) in _DIRECT_RESP:
        return call_text(CallNode(node.layer, node.caller, node.context, r))
    if abi.is_success(r):
        head = "FFA_SUCCESS_64" if r[0] == abi.FFA_SUCCESS_64 else "FFA_SUCCESS"
        if fid in (
            abi.FFA_MEM_SHARE_32,
            abi.FFA_MEM_SHARE_64,
            abi.FFA_MEM_LEND_32,
            abi.FFA_MEM_LEND_64,
            abi.FFA_MEM_DONATE_32,
            abi.FFA_MEM_DONATE_64,
        ):
            return f"{head}(handle={_hex(abi.make_handle(r[2], r[3]))})"
        if fid == abi.FFA_PARTITION_INFO_GET:
            return f"{head}(count={r[2] & abi.MASK32}, size={r[3] & abi.MASK32})"
        if fid == abi.FFA_ID_GET:
            return f"{head}(id={_hex(r[2] & 0xFFFF)})"
        vals = [f"w{i}={_hex(v)}" for i, v in enumerate(r[1:8], start=1) if v]
        return f"{head}({', '.join(vals)})" if vals else head
    return abi.describe(r)


def walk(nodes: list[CallNode], depth: int = 0) -> list[tuple[int, CallNode]]:
    out: list[tuple[int, CallNode]] = []
    for n in nodes:
        out.append((depth, n))
        out.extend(walk(n.children, depth + 1))
    return out


def call_line(depth: int, node: CallNode) -> str:
    """One call: its caller (``d0v1``, ``xen``, ``sp8002``), indented by nesting depth, the
    call and its answer."""
    indent = "  " * depth
    left = f"{node.caller:<6} {indent}{call_text(node)}"
    return f"{left:<{_CALL_COLUMN}} -> {result_text(node)}"


# ---------------------------------------------------------------------------------------------
# The command


def creation_failure(e: Any) -> str:
    """Why Xen refused a domain, by errno name, and the usual cause."""
    from ..scenario._check import refusal

    why = refusal(e)
    return why + " (see the calls above)" if -e.errno == errno.EIO else why


def style(node: CallNode) -> str:
    if node.result is None or abi.is_error(node.result):
        return "red"
    return "green" if node.layer == "hvc" else ""


def record_json(rec: Any) -> dict[str, Any]:
    return {
        "thread": rec.thread,
        "phase": rec.phase,
        "index": rec.index,
        "op": rec.op,
        "label": rec.label,
        "outcome": rec.outcome,
        "expected": list(rec.expected),
        "function": abi.name(rec.fid) if rec.fid is not None else None,
        "regs": list(rec.regs) if rec.regs is not None else None,
        "ok": rec.ok,
        "problem": rec.problem,
        "note": rec.note,
    }


def node_json(depth: int, node: CallNode) -> dict[str, Any]:
    return {
        "depth": depth,
        "phase": node.phase,
        "context": node.context,
        "caller": node.caller,
        "layer": node.layer,
        "function": abi.name(node.args[0]),
        "call": call_text(node),
        "args": list(node.args),
        "result": list(node.result) if node.result is not None else None,
        "answer": result_text(node),
    }
