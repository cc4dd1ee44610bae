"""``ffasim run [SCENARIO]``: one sequential run of a scenario, with a readable call trace.

The scenario's threads run one after another, in the order the scenario lists them, then its
final steps and teardown. Every FF-A call is printed on one line (the calling context, the
function with its key arguments, the answer by name); the SPMC calls a guest call caused are
indented under it, and a partition's calls under those. A summary follows: how many calls,
how many steps got an error they expected or one they did not, and the oracle's verdict.

Exit status: 0 when every step got an answer its expectations accept and the teardown left
nothing behind, 1 otherwise (or when the model crashed: a hypervisor panic, a deadlock), 2 for
a scenario or usage error (one line on stderr).
"""

from __future__ import annotations

import errno
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from .. import abi, desc
from ..machine import EventSink, Machine, ModelError
from . import app

TRACE_FORMATS = ("text", "json", "mermaid", "chrome")
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


def _walk(nodes: list[CallNode], depth: int = 0) -> list[tuple[int, CallNode]]:
    out: list[tuple[int, CallNode]] = []
    for n in nodes:
        out.append((depth, n))
        out.extend(_walk(n.children, depth + 1))
    return out


def call_line(depth: int, node: CallNode) -> str:
    """One call: its caller (``d0v1``, ``xen``, ``sp8002``), indented by nesting depth, the
    call and its answer."""
    indent = "  " * depth
    left = f"{node.caller:<6} {indent}{call_text(node)}"
    return f"{left:<{_CALL_COLUMN}} -> {result_text(node)}"


# ---------------------------------------------------------------------------------------------
# The command


class _Out:
    """Plain text, or rich colour on a terminal."""

    def __init__(self, colour: bool) -> None:
        self.console: Any = None
        if colour:
            from rich.console import Console

            self.console = Console(highlight=False, soft_wrap=True)

    def line(self, text: str, style: str = "") -> None:
        if self.console is not None and style:
            from rich.text import Text

            self.console.print(Text(text, style=style))
        elif self.console is not None:
            self.console.print(text, markup=False)
        else:
            typer.echo(text)


def _fail(message: str, as_json: bool = False) -> NoReturn:
    """Bad usage or input: one line on stderr (and, under --json, ``{"error": ...}`` on stdout,
    as ``ffasim check --json`` does, so that a script reading stdout sees why), exit 2."""
    if as_json:
        typer.echo(json.dumps({"error": message}))
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _count(n: int, noun: str) -> str:
    """``1 step``, ``2 steps``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _creation_failure(e: Any) -> str:
    """Why Xen refused a domain, by errno name, and the usual cause of -EIO."""
    name = errno.errorcode.get(-e.errno, "")
    why = f"Xen refused to create d{e.domid}: {'-' + name if name else 'error'} ({e.errno})"
    if -e.errno == errno.EIO:
        why += ", a partition answered VM created with an error (see the calls above)"
    return why


def _style(node: CallNode) -> str:
    if node.result is None or abi.is_error(node.result):
        return "red"
    return "green" if node.layer == "hvc" else ""


def _record_json(rec: Any) -> dict[str, Any]:
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


def _node_json(depth: int, node: CallNode) -> dict[str, Any]:
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


@app.command()
def run(
    scenario: Annotated[
        str,
        typer.Argument(
            help="A built-in scenario name, or a .toml or .py scenario file.", metavar="SCENARIO"
        ),
    ] = "default",
    variant: Annotated[
        str | None,
        typer.Option(
            "--variant",
            help="Mediator variant (default: the scenario's, else reference).",
            metavar="NAME",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON record instead of the trace.", metavar="")
    ] = False,
    trace: Annotated[
        Path | None,
        typer.Option("--trace", help="Also write the call trace to FILE.", metavar="FILE"),
    ] = None,
    trace_format: Annotated[
        str | None,
        typer.Option(
            "--trace-format",
            help=f"Format of --trace: {', '.join(TRACE_FORMATS)} (default json).",
            metavar="FORMAT",
            show_default=False,
        ),
    ] = None,
    boot: Annotated[
        bool, typer.Option("--boot", help="Also print Xen's boot-time calls.", metavar="")
    ] = False,
) -> None:
    """Run SCENARIO once, sequentially, and print every FF-A call and the verdict.

    The threads run one after another in the order the scenario lists them. Exit 0: every
    step got an answer it accepts and nothing leaked; 1: not so, or the model crashed; 2: bad
    usage or scenario.
    """
    from ..scenario import ScenarioError, load
    from ..system import DomainCreationError

    if trace_format is not None and trace_format not in TRACE_FORMATS:
        _fail(
            f"unknown trace format {trace_format!r} (expected one of: {', '.join(TRACE_FORMATS)})",
            as_json,
        )
    if trace_format is not None and trace is None:
        _fail("--trace-format needs --trace FILE (where the trace goes)", as_json)
    try:
        sc = load(scenario)
    except ScenarioError as e:
        _fail(str(e), as_json)
    if variant is not None:
        from ..xen import variants

        known = list(variants.names())
        if variant not in known:
            _fail(f"unknown variant {variant!r} (known: {', '.join(known)})", as_json)
    used_variant = variant or sc.variant or "reference"

    sink = RunSink()
    machine = Machine(sink)
    sink.machine = machine
    crash: str | None = None
    problems: list[str] = []
    instance = None
    try:
        sink.phase = "setup"
        instance = sc.instantiate(variant, machine=machine)
        for th in instance.threads:
            sink.phase = th.name
            machine.current = th.name
            sink.thread_event("thread-start", th.name)
            th.body()
            sink.thread_event("thread-end", th.name)
        sink.phase = "finish"
        problems = instance.finish()
    except DomainCreationError as e:
        # Xen refusing a domain (a partition refused VM_CREATED) is not a crash, but the
        # scenario cannot run as written.
        crash = f"the scenario could not create its VMs: {_creation_failure(e)}"
    except ModelError as e:
        crash = f"crash: {type(e).__name__} in {machine.current}: {e}"
    except Exception as e:  # the model crashed: a finding, reported in one line
        crash = f"crash: {type(e).__name__} in {machine.current}: {e}"

    records = instance.results if instance is not None else []
    nodes = [(d, n) for d, n in _walk(sink.roots) if boot or n.context != "boot"]
    guest_calls = sum(1 for d, n in nodes if d == 0 and n.layer == "hvc")
    expected_errors = sum(1 for r in records if r.error and r.ok)
    unexpected = sum(1 for r in records if not r.ok)
    skipped = sum(1 for r in records if r.outcome == "skipped")
    ok = crash is None and not problems
    if trace is not None:
        from ..trace import for_output, render

        fmt = trace_format or "json"
        try:
            trace.write_text(for_output(render(sink.events, fmt), fmt, trace), encoding="utf-8")
        except OSError as e:
            _fail(f"cannot write {trace}: {e.strerror or e}", as_json)

    if as_json:
        typer.echo(
            json.dumps(
                {
                    "scenario": sc.name,
                    "variant": used_variant,
                    "ok": ok,
                    "calls": [_node_json(d, n) for d, n in nodes],
                    "steps": [_record_json(r) for r in records],
                    "summary": {
                        "calls": len(nodes),
                        "guest_calls": guest_calls,
                        "steps": len(records),
                        "expected_errors": expected_errors,
                        "unexpected": unexpected,
                        "skipped": skipped,
                    },
                    "problems": problems,
                    "crash": crash,
                }
            )
        )
        raise typer.Exit(0 if ok else 1)

    out = _Out(sys.stdout.isatty())
    about = f": {sc.description}" if sc.description else ""
    out.line(f"scenario {sc.name} on {used_variant}{about}", "bold")
    phase = None
    for depth, node in nodes:
        if node.phase != phase and depth == 0:
            phase = node.phase
            title = f"thread {phase}" if phase not in ("boot", "setup", "finish") else phase
            out.line(f"-- {title}", "dim")
        out.line(call_line(depth, node), _style(node) if depth == 0 else "dim")
    out.line("")
    parts = [
        f"{_count(len(nodes), 'FF-A call')} ({guest_calls} from guests)",
        _count(len(records), "step"),
        _count(expected_errors, "expected error"),
        f"{unexpected} unexpected",
    ]
    if skipped:
        parts.append(f"{skipped} skipped")
    out.line("summary: " + ", ".join(parts))
    for r in records:
        if r.outcome == "skipped":
            out.line(f"  skipped: {r.thread} {r.label} ({r.note})", "dim")
    for p in problems:
        out.line(f"  {p}", "red")
    if crash is not None:
        out.line(crash, "bold red")
    out.line(f"verdict: {'ok' if ok else 'FAILED'}", "bold green" if ok else "bold red")
    raise typer.Exit(0 if ok else 1)
