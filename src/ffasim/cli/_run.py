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

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from . import app
from ._check import HYPERVISOR_HELP, check_hypervisor

TRACE_FORMATS = ("text", "json", "mermaid", "chrome")


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
        from ._outputs import SCHEMA_VERSION

        typer.echo(json.dumps({"schema_version": SCHEMA_VERSION, "error": message}))
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _count(n: int, noun: str) -> str:
    """``1 step``, ``2 steps``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


@app.command()
def run(
    scenario: Annotated[
        str | None,
        typer.Argument(
            help="A built-in scenario name, or a .toml or .py scenario file (default: default, "
            "or pkvm-default under --hypervisor pkvm).",
            metavar="SCENARIO",
            show_default=False,
        ),
    ] = None,
    variant: Annotated[
        str | None,
        typer.Option(
            "--variant",
            help="Mediator variant (default: the scenario's, else reference; head under pkvm).",
            metavar="NAME",
        ),
    ] = None,
    hypervisor: Annotated[
        str | None,
        typer.Option("--hypervisor", help=HYPERVISOR_HELP, metavar="NAME", show_default=False),
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
    from ..machine import Machine, ModelError
    from ..pkvm import PkvmInitError
    from ..scenario import ScenarioError
    from ..scenario._check import CheckError, load_scenario, resolve_variant
    from ..system import DomainCreationError
    from ._calls import (
        RunSink,
        call_line,
        creation_failure,
        node_json,
        record_json,
        style,
        walk,
    )

    if trace_format is not None and trace_format not in TRACE_FORMATS:
        from .._suggest import unknown

        _fail(
            unknown("trace format", trace_format, TRACE_FORMATS, listed="expected one of"), as_json
        )
    if trace_format is not None and trace is None:
        _fail("--trace-format needs --trace FILE (where the trace goes)", as_json)
    check_hypervisor(hypervisor, as_json)
    try:
        sc = load_scenario(scenario, hypervisor)
        used_variant = resolve_variant(sc, variant)
    except (ScenarioError, CheckError) as e:
        _fail(str(e), as_json)

    sink = RunSink()
    machine = Machine(sink)
    sink.machine = machine
    crash: str | None = None
    problems: list[str] = []
    instance = None
    try:
        sink.phase = "setup"
        instance = sc.instantiate(used_variant, machine=machine)
        for th in instance.threads:
            sink.phase = th.name
            machine.current = th.name
            sink.thread_event("thread-start", th.name)
            th.body()
            sink.thread_event("thread-end", th.name)
        sink.phase = "finish"
        problems = instance.finish()
    except PkvmInitError as e:
        crash = f"pKVM's FF-A proxy failed to initialise: {e}"
    except DomainCreationError as e:
        # Xen refusing a domain (a partition refused VM_CREATED) is not a crash, but the
        # scenario cannot run as written.
        crash = f"the scenario could not create its VMs: {creation_failure(e)}"
    except ModelError as e:
        crash = f"crash: {type(e).__name__} in {machine.current}: {e}"
    except Exception as e:  # the model crashed: a finding, reported in one line
        crash = f"crash: {type(e).__name__} in {machine.current}: {e}"

    records = instance.results if instance is not None else []
    nodes = [(d, n) for d, n in walk(sink.roots) if boot or n.context != "boot"]
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
        import msgspec

        from ._outputs import SCHEMA_VERSION, RunCall, RunReport, RunStep, RunSummary

        report = RunReport(
            schema_version=SCHEMA_VERSION,
            scenario=sc.name,
            variant=used_variant,
            hypervisor=sc.hypervisor,
            ok=ok,
            calls=[RunCall(**node_json(d, n)) for d, n in nodes],
            steps=[RunStep(**record_json(r)) for r in records],
            summary=RunSummary(
                calls=len(nodes),
                guest_calls=guest_calls,
                steps=len(records),
                expected_errors=expected_errors,
                unexpected=unexpected,
                skipped=skipped,
            ),
            problems=problems,
            crash=crash,
        )
        typer.echo(json.dumps(msgspec.to_builtins(report)))
        raise typer.Exit(0 if ok else 1)

    out = _Out(sys.stdout.isatty())
    about = f": {sc.description}" if sc.description else ""
    on = used_variant if sc.hypervisor == "xen" else f"pkvm {used_variant}"
    out.line(f"scenario {sc.name} on {on}{about}", "bold")
    phase = None
    for depth, node in nodes:
        if node.phase != phase and depth == 0:
            phase = node.phase
            title = f"thread {phase}" if phase not in ("boot", "setup", "finish") else phase
            out.line(f"-- {title}", "dim")
        out.line(call_line(depth, node), style(node) if depth == 0 else "dim")
    out.line("")
    parts = [
        f"{_count(len(nodes), 'FF-A call')} ({guest_calls} from "
        f"{'guests' if sc.hypervisor == 'xen' else 'the host'})",
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
