"""``ffasim hunt``: generated adversarial programs under exploration, faults and every monitor,
with no scenario and no hint (``ffasim.hunt``).

Exit status: 0 nothing found, 1 something found, 2 bad usage, 130 interrupted (Ctrl-C) with
nothing found; Ctrl-C reports what was found so far. ``--json`` prints exactly one JSON object
on stdout; the progress line goes to stderr, and only to a terminal.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from . import app

if TYPE_CHECKING:
    from ..hunt import HuntReport


def _fail(message: str, as_json: bool) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"error": message}))
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


class _Bar:
    """A rich status line on stderr: programs, executions, coverage, findings."""

    def __init__(self, time_limit: float) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]hunting"),
            BarColumn(),
            TextColumn("{task.fields[programs]} programs"),
            TextColumn("{task.fields[executions]} executions"),
            TextColumn("{task.fields[combinations]} combinations"),
            TextColumn("{task.fields[findings]} findings"),
            TimeElapsedColumn(),
            transient=True,
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task(
            "hunt", total=time_limit, programs=0, executions=0, combinations=0, findings=0
        )
        self._progress.start()

    def __call__(self, report: HuntReport, program: Any) -> None:
        self._progress.update(
            self._task,
            completed=report.elapsed,
            programs=report.programs,
            executions=report.executions,
            combinations=report.coverage.get("combinations", 0),
            findings=len(report.findings),
        )

    def close(self) -> None:
        self._progress.stop()


def _print(report: HuntReport) -> None:
    cov = report.coverage
    on = report.variant if report.hypervisor == "xen" else f"pkvm {report.variant}"
    verdict = (
        f"{len(report.findings)} finding{'s' if len(report.findings) != 1 else ''}"
        if report.found
        else "nothing found"
    )
    typer.echo(
        f"ffasim hunt: {on} (seed {report.seed}): {verdict} in {report.programs} "
        f"program{'s' if report.programs != 1 else ''}, {report.executions} executions "
        f"({report.elapsed:.1f} s); coverage "
        f"{cov.get('combinations', 0)} combinations of {cov.get('functions', 0)} functions"
    )
    for f in report.findings:
        typer.echo("")
        typer.echo(f"{f.kind}: {f.message}")
        typer.echo(f"  program:   {f.program} (found after {f.elapsed:.1f} s)")
        typer.echo(f"  scenario:  {f.scenario}")
        typer.echo(f"  schedule:  {f.schedule}")
        typer.echo(f"  check:     {f.check_command}")
        typer.echo(f"  replay:    {f.replay_command}")
        if not f.reproduced:
            typer.echo("  warning:   the saved schedule did not replay to this finding")
    if report.harness:
        typer.echo("")
        typer.echo(
            f"{len(report.harness)} generated programs crashed in the guest side (not findings)"
        )


@app.command()
def hunt(
    variant: Annotated[
        str | None,
        typer.Option(
            "--variant",
            help="Mediator variant to hunt in (default: reference; head under pkvm).",
            metavar="NAME",
            show_default=False,
        ),
    ] = None,
    hypervisor: Annotated[
        str,
        typer.Option(
            "--hypervisor",
            help="xen (Xen's mediator) or pkvm (pKVM's FF-A proxy, the host kernel calling).",
            metavar="NAME",
        ),
    ] = "xen",
    time_limit: Annotated[
        float, typer.Option("--time-limit", help="Seconds to hunt for.", metavar="S")
    ] = 60.0,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the generated programs.", metavar="N")
    ] = 0,
    all_findings: Annotated[
        bool, typer.Option("--all", help="Keep hunting after the first finding.", metavar="")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON report.", metavar="")
    ] = False,
    out: Annotated[
        Path,
        typer.Option("--out", help="Where each finding's scenario and schedule go.", metavar="DIR"),
    ] = Path("ffasim-findings"),
) -> None:
    """Generate adversarial programs and check them under faults and every monitor.

    No scenario: swarm-generated concurrent programs (1-4 VMs of 1-3 vCPUs, every guest call
    Xen mediates, malformed descriptors, destroys, partitions that message VMs), each explored
    briefly, coverage-guided. Each finding is reduced and saved as a TOML scenario and a
    schedule that 'ffasim check' and 'ffasim replay' reproduce. Deterministic from the seed.
    """
    from ..hunt import hunt as run_hunt
    from ..scenario import ScenarioError
    from ..scenario._check import CheckError

    bar = _Bar(time_limit) if not as_json and sys.stderr.isatty() and time_limit > 0 else None
    try:
        report = run_hunt(
            variant or "reference",
            hypervisor=hypervisor,
            time_limit=time_limit,
            seed=seed,
            stop_at_first=not all_findings,
            out_dir=out,
            progress=bar,
        )
    except (CheckError, ScenarioError) as e:
        _fail(str(e).splitlines()[0], as_json)
    except OSError as e:
        _fail(f"cannot write findings to {out}: {e.strerror or e}", as_json)
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        typer.echo(json.dumps(report.to_json()))
    else:
        _print(report)
    if report.found:
        raise typer.Exit(1)
    raise typer.Exit(130 if report.stopped == "interrupted" else 0)
