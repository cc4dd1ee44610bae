"""``ffasim check`` and ``ffasim replay``: explore a scenario's interleavings and faults, and
reproduce a saved finding.

Exit status: 0 nothing found, 1 something found (``replay``: the replayed execution shows a
finding), 2 bad usage, a bad scenario, fault spec or schedule file, or a replay that diverged.
Errors are one line on stderr (``error: ...``), never a traceback.
"""

from __future__ import annotations

import json
import math
import re
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from . import app

if TYPE_CHECKING:
    from ..scenario._check import CheckReport

FORMATS = ("text", "json", "mermaid", "chrome")
LIST_WIDTH = 100


def _fail(message: str, as_json: bool = False) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"error": message}))
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


HYPERVISOR_HELP = (
    "What stands in front of the SPMC: xen (Xen's mediator) or pkvm (Linux pKVM's FF-A proxy, "
    "the one VM of the scenario becoming the host kernel). Default: the scenario's own."
)


def check_hypervisor(hypervisor: str | None, as_json: bool = False) -> None:
    """``--hypervisor``: one of the known ones, or a clear error (exit 2)."""
    from .._suggest import unknown
    from ..system import HYPERVISORS

    if hypervisor is not None and hypervisor not in HYPERVISORS:
        _fail(unknown("hypervisor", hypervisor, HYPERVISORS, listed="expected one of"), as_json)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is meant for the user (one line), from every layer we call."""
    from ..check.faults import FaultSpecError
    from ..check.schedule import ReplayDivergence, ScheduleError
    from ..scenario import ScenarioError
    from ..scenario._check import CheckError

    return (CheckError, FaultSpecError, ScenarioError, ScheduleError, ReplayDivergence)


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


Row = tuple[str, str, str]
"""(name, hypervisor, one-paragraph description) of a built-in scenario or a variant."""


def _catalogue() -> tuple[list[Row], list[Row]]:
    """Every built-in scenario (pKVM's programs last), and every variant of each hypervisor."""
    from ..pkvm import variants as pkvm_variants
    from ..scenario import builtin_scenarios, pkvm_builtins
    from ..xen import variants

    def flat(text: str | None) -> str:
        return " ".join((text or "").split())

    scenarios: list[Row] = [
        (n, sc.hypervisor, flat(sc.description))
        for n, sc in [*builtin_scenarios().items(), *pkvm_builtins().items()]
    ]
    rows: list[Row] = [(n, "xen", flat(variants.describe(n))) for n in variants.names()]
    rows += [(n, "pkvm", flat(pkvm_variants.describe(n))) for n in pkvm_variants.names()]
    return scenarios, rows


def _list_all(as_json: bool) -> None:
    """``--list``: JSON under --json, a rich table on a terminal, plain text otherwise."""
    scenarios, variant_rows = _catalogue()
    if as_json:
        from ._outputs import SCHEMA_VERSION

        typer.echo(
            json.dumps(
                {
                    "schema_version": SCHEMA_VERSION,
                    "scenarios": [
                        {"name": n, "hypervisor": h, "description": d} for n, h, d in scenarios
                    ],
                    "variants": [
                        {"name": n, "hypervisor": h, "description": d} for n, h, d in variant_rows
                    ],
                }
            )
        )
        return
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        console = Console()
        for title, rows in (("Built-in scenarios", scenarios), ("Variants", variant_rows)):
            table = Table(title=title, title_justify="left", show_lines=True)
            table.add_column("name", style="bold", no_wrap=True)
            table.add_column("under", no_wrap=True)
            table.add_column("what it is")
            for name, hypervisor, desc in rows:
                table.add_row(name, hypervisor, desc)
            console.print(table)
        return

    def show(title: str, rows: list[Row]) -> None:
        typer.echo(title)
        width = max([len(n) for n, _, _ in rows] + [8])
        for name, hypervisor, desc in rows:
            text = f"[{hypervisor}] {desc}" if hypervisor != "xen" else desc
            typer.echo(
                textwrap.fill(
                    text,
                    width=LIST_WIDTH,
                    initial_indent=f"  {name:<{width}}  ",
                    subsequent_indent=" " * (width + 4),
                    break_on_hyphens=False,
                    break_long_words=False,
                )
                if text
                else f"  {name}"
            )

    show("Built-in scenarios:", scenarios)
    show("Variants:", variant_rows)


def _field(label: str, value: str) -> str:
    """One indented ``label: value`` line of a finding, values aligned."""
    return f"  {label + ':':<10} {value}"


_ENDS = {
    "budget": "budget reached",
    "time-limit": "time limit reached",
    "interrupted": "interrupted",
}


def _scope(report: CheckReport) -> str:
    """How much of the search space a check covered, in words: "exhaustive" only when every
    schedule (and every injectable fault) was explored."""
    if report.exhaustive:
        return "exhaustive"
    bound = report.covered_bound
    covered = (
        ""
        if bound is None
        else f"every schedule with at most {bound} preemption{'' if bound == 1 else 's'}"
    )
    if report.stopped == "exhausted":
        return covered or "explored all it would"
    end = _ENDS.get(report.stopped, report.stopped)
    return f"{end}, not exhaustive" + (f"; {covered} explored" if covered else "")


def _render_report(report: CheckReport) -> str:
    faults = f", faults {' '.join(report.faults)}" if report.faults else ""
    seed = "" if report.strategy == "dfs" else f" (seed {report.seed})"
    on = report.variant if report.hypervisor == "xen" else f"pkvm {report.variant}"
    head = f"ffasim check: {report.scenario} on {on}, {report.strategy}{seed}{faults}: "
    runs = f"{report.executions} execution{'s' if report.executions != 1 else ''}"
    notes = [f"note: {n}" for n in report.notes]
    if not report.issues:
        text = head + f"nothing found in {runs} ({_scope(report)}, {report.elapsed:.2f} s)\n"
        return text + "".join(n + "\n" for n in notes)
    n = len(report.issues)
    # Without --all the search stops at the first finding; with it, say how far it went.
    scope = f"{_scope(report)}, " if report.stopped != "finding" else ""
    lines = [head + f"{n} finding{'s' if n != 1 else ''} in {runs} ({scope}{report.elapsed:.2f} s)"]
    for issue in report.issues:
        f, r = issue.finding, issue.result
        lines += ["", f"{f.kind}: {f.message}"]
        if f.threads:
            lines.append(_field("contexts", ", ".join(f.threads)))
        if f.calls:
            lines.append(_field("calls", ", ".join(f.calls)))
        if issue.in_flight and issue.in_flight != list(f.calls):
            lines.append(_field("in flight", ", ".join(issue.in_flight)))
        if issue.locks_held:
            held = ", ".join(f"{lock} by {who}" for lock, who in issue.locks_held)
            lines.append(_field("held", held))
        if r.faults:
            done = ", ".join(
                f"{site} -> {_code(code)} (step {step})" for step, site, code in r.faults
            )
            lines.append(_field("faults", done))
        for other in issue.also:
            lines.append(_field("also", other.summary()))
        if issue.found_by and issue.found_by != report.strategy:
            lines.append(_field("found by", issue.found_by))
        pre = r.preemptions
        lines.append(
            _field(
                "schedule",
                f"{issue.path} ({pre} preemption{'' if pre == 1 else 's'}, {r.steps} steps)",
            )
        )
        lines.append(_field("replay", issue.replay_command))
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


_SOURCE_PLACE = re.compile(r"(?:[^\s\[\]()]*/)?([^\s/\[\]()]+\.(?:py|toml))(?::\d+)?")


def _same_finding(found: str, recorded: str) -> bool:
    """Whether a replayed finding is the one its schedule recorded. Where a file is named
    (``xen/variants/seed_v1.py:192``, ``[s.toml:16]``) only its name counts: editing the
    model, which is what one does between a check and its replay, moves line numbers, and
    the replay loads a scenario file by the absolute path the schedule keeps, where the
    check was given a relative one."""
    return found == recorded or _SOURCE_PLACE.sub(r"\1", found) == _SOURCE_PLACE.sub(
        r"\1", recorded
    )


def _code(code: int) -> str:
    from .. import abi

    return abi.error_name(code) if code < 0 else "forced"


@app.command()
def check(
    scenario: Annotated[
        str | None,
        typer.Argument(
            help="A built-in scenario name (see --list), or a .toml or .py file "
            "(default: default, or pkvm-default under --hypervisor pkvm).",
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
        typer.Option(
            "--hypervisor",
            help=HYPERVISOR_HELP,
            metavar="NAME",
            show_default=False,
        ),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy",
            help="dfs (exhaustive, DPOR), pct or random (default: a portfolio of all three: "
            "iterative preemption bounding, PCT and random in turn).",
            metavar="NAME",
            show_default=False,
        ),
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(
            "--budget",
            help="Most executions to run (default 1000).",
            show_default=False,
            metavar="N",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of pct and random.", metavar="N")] = 0,
    faults: Annotated[
        list[str] | None,
        typer.Option(
            "--faults",
            help="Inject faults: all, smc[:NAME[:CODES]], alloc[:NAME], helper[:NAME] "
            "(repeatable).",
            show_default=False,
            metavar="SPEC",
        ),
    ] = None,
    max_faults: Annotated[
        int, typer.Option("--max-faults", help="Most faults injected per execution.", metavar="N")
    ] = 1,
    preemption_bound: Annotated[
        int | None,
        typer.Option(
            "--preemption-bound",
            help="dfs: most preemptions per execution; portfolio: the highest bound tried.",
            metavar="N",
        ),
    ] = None,
    time_limit: Annotated[
        float | None,
        typer.Option("--time-limit", help="Stop exploring after S seconds.", metavar="S"),
    ] = None,
    out: Annotated[
        Path,
        typer.Option("--out", help="Where schedule files of findings are written.", metavar="DIR"),
    ] = Path("ffasim-findings"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON report.", metavar="")
    ] = False,
    list_: Annotated[
        bool,
        typer.Option("--list", help="List built-in scenarios and variants, then exit.", metavar=""),
    ] = False,
    all_findings: Annotated[
        bool, typer.Option("--all", help="Keep exploring after the first finding.", metavar="")
    ] = False,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", help="Also write a JUnit XML report to FILE.", metavar="FILE"),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Report the accepted consequences of injected faults as findings, not notes.",
            metavar="",
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Explore in N worker processes (same findings for the same seed whatever N; "
            "1: in this process).",
            metavar="N",
        ),
    ] = 1,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="Where workers run: local processes, or ray (a Ray cluster, or a local Ray "
            "started for the check).",
            metavar="NAME",
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="--backend ray: the cluster to join (default: RAY_ADDRESS, else a local Ray).",
            metavar="ADDR",
        ),
    ] = None,
) -> None:
    """Explore a scenario under every interleaving of its vCPUs (and injected faults).

    Each finding is minimised and its schedule saved under --out; replay it with
    'ffasim replay FILE'. Exit 0: nothing found; 1: found; 2: bad usage or scenario.
    """
    if list_:
        try:
            _list_all(as_json)
        except _user_errors() as e:
            _fail(_one_line(e), as_json)
        return
    from ..scenario._check import DEFAULT_BUDGET, check_scenario

    check_hypervisor(hypervisor, as_json)
    if preemption_bound is not None and strategy in ("pct", "random"):  # they would ignore it
        _fail(f"--preemption-bound applies to dfs and the portfolio, not {strategy}", as_json)
    if faults and max_faults == 0:  # the report would name faults that are never injected
        _fail("--faults with --max-faults 0 injects nothing; leave out one or the other", as_json)
    if time_limit is not None and math.isnan(time_limit):
        _fail("--time-limit must be a number of seconds, not nan", as_json)
    if workers < 1:
        _fail(f"--workers must be at least 1, not {workers}", as_json)
    if backend not in ("local", "ray"):
        _fail(f"unknown --backend '{backend}' (expected one of: local, ray)", as_json)
    if ray_address is not None and backend != "ray":
        _fail("--ray-address applies to --backend ray only", as_json)
    if out.exists() and not out.is_dir():  # found now, not after the whole exploration
        _fail(f"--out {out} is a file; it must be a directory (created if missing)", as_json)
    progress = not as_json and sys.stderr.isatty()  # the bar is drawn on stderr
    try:
        report = check_scenario(
            scenario,
            variant=variant,
            hypervisor=hypervisor,
            strategy=strategy,
            budget=DEFAULT_BUDGET if budget is None else budget,
            seed=seed,
            faults=faults or None,
            max_faults=max_faults,
            preemption_bound=preemption_bound,
            time_limit=time_limit,
            out_dir=out,
            progress=progress,
            stop_on_first=not all_findings,
            strict=strict,
            catch_interrupt=True,
            workers=workers,
            backend=backend,
            ray_address=ray_address,
        )
    except _user_errors() as e:
        _fail(_one_line(e), as_json)
    except OSError as e:
        _fail(f"cannot write schedule files under {out}: {e.strerror or e}", as_json)
    except KeyboardInterrupt:
        typer.echo("interrupted (use --time-limit or --budget to bound a check)", err=True)
        raise typer.Exit(130) from None
    if junit is not None:
        from ._junit import write_junit

        try:
            write_junit(junit, report, report.stopped)
        except OSError as e:
            _fail(f"cannot write {junit}: {e.strerror or e}", as_json)
    if as_json:
        from ._outputs import SCHEMA_VERSION

        doc = {"schema_version": SCHEMA_VERSION, **report.to_json()}
        typer.echo(json.dumps(doc, indent=1))
    else:
        typer.echo(_render_report(report), nl=False)
    for spec in report.unmatched_faults:
        typer.echo(
            f"note: --faults '{spec}' matched no fault site this scenario reaches: "
            "nothing was injected for it",
            err=True,
        )
    if report.stopped == "interrupted" and not report.found:
        raise typer.Exit(130)  # nothing found, but nothing was proved either
    raise typer.Exit(1 if report.found else 0)


@app.command()
def replay(
    file: Annotated[
        Path, typer.Argument(help="A schedule file written by 'ffasim check'.", metavar="FILE")
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="Trace format: text, json, mermaid or chrome.", metavar="FORMAT"
        ),
    ] = "text",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the trace to F instead of stdout.", metavar="F"),
    ] = None,
    context: Annotated[
        list[str] | None,
        typer.Option(
            "--context",
            help="text: only the events of this context (repeatable).",
            metavar="CTX",
        ),
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="mermaid: keep boot, setup and the SPMC's own locks.", metavar=""
        ),
    ] = False,
    variant: Annotated[
        str | None,
        typer.Option(
            "--variant",
            help="Run the schedule on this variant instead (does a fix remove the finding?).",
            metavar="V",
        ),
    ] = None,
) -> None:
    """Re-run a saved schedule exactly and print its trace.

    Exit 1 when the replayed execution shows a finding (it reproduces), 0 when it does not,
    2 on a bad file or when the execution leaves the schedule (the model changed). With
    --variant V: exit 1 when the recorded finding happens again on V, 0 when it does not.
    """
    from ..check.schedule import ReplayDivergence, Schedule
    from ..scenario._check import replay_file

    if fmt not in FORMATS:
        _fail(f"unknown --format '{fmt}' (expected one of: {', '.join(FORMATS)})")
    if context and fmt != "text":
        _fail("--context applies to --format text only")
    if full and fmt != "mermaid":
        _fail("--full applies to --format mermaid only")
    if variant is not None:
        _replay_on(file, variant, fmt, output, context, full)

    try:
        schedule = Schedule.load(file)
        result, trace = replay_file(file)
    except ReplayDivergence as e:  # say what to do about it, too
        again = f"ffasim check {schedule.scenario}" + (
            f" --variant {schedule.variant}" if schedule.variant else ""
        )
        _fail(
            f"{_one_line(e)} (the model, the scenario or the schedule changed since it was "
            f"recorded; '{again}' records a fresh one)"
        )
    except _user_errors() as e:
        _fail(_one_line(e))
    _emit_trace(trace, fmt, output, context, full)
    findings = list(result.findings)
    for f in findings:
        typer.echo(f"finding: {f.kind}: {f.message}", err=True)
    if schedule.finding and not any(_same_finding(f.summary(), schedule.finding) for f in findings):
        typer.echo(
            f"note: the schedule recorded '{schedule.finding}', the replay "
            + ("found something else" if findings else "found nothing"),
            err=True,
        )
    raise typer.Exit(1 if findings else 0)


def _emit_trace(
    trace: list[Any], fmt: str, output: Path | None, context: list[str] | None, full: bool
) -> None:
    """Print ``trace`` (or write it to ``output``) in ``fmt``, keeping only ``context``'s
    events in text."""
    from ..trace import for_output, render, render_mermaid, render_text

    if context:
        known = list(dict.fromkeys(ev.thread for ev in trace))
        unknown = [c for c in context if c not in known]
        if unknown:  # a typo would otherwise print only the finding line
            _fail(f"no context {unknown[0]!r} in this execution (contexts: {', '.join(known)})")
    if fmt == "text" and context:
        text = render_text(trace, threads=context)
    elif fmt == "mermaid" and full:
        text = render_mermaid(trace, full=True)
    else:
        text = render(trace, fmt)
    if output is not None:
        try:
            output.write_text(for_output(text, fmt, output), encoding="utf-8")
        except OSError as e:
            _fail(f"cannot write {output}: {e.strerror or e}")
    else:
        typer.echo(text, nl=False)


def _replay_on(
    file: Path,
    variant: str,
    fmt: str,
    output: Path | None,
    context: list[str] | None,
    full: bool,
) -> NoReturn:
    """``replay FILE --variant V``: the schedule on another variant, and whether its finding
    happens again there (exit 1) or not (exit 0)."""
    from ..api import replay_file

    try:
        run = replay_file(file, variant=variant)
    except _user_errors() as e:
        _fail(_one_line(e))
    _emit_trace(run.trace, fmt, output, context, full)
    for f in run.findings:
        typer.echo(f"finding: {f.kind}: {f.message}", err=True)
    if run.reproduced:
        typer.echo(f"reproduced on {run.variant}", err=True)
        raise typer.Exit(1)
    if run.followed:
        typer.echo(f"not reproduced on {run.variant}", err=True)
    else:
        typer.echo(
            f"not reproduced on {run.variant}, which does not offer every choice the schedule "
            f"made; 'ffasim check {run.scenario} --variant {run.variant}' searches them all",
            err=True,
        )
    raise typer.Exit(0)
