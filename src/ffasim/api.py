"""Checking and replaying from Python: ``ffasim.check_scenario`` and ``ffasim.replay_file``.

The same work as ``ffasim check`` and ``ffasim replay``, with the same defaults, returning plain
results instead of printing: a :class:`Report` of :class:`Finding` (each with the path of its
schedule file) and a :class:`Replay`. A finding's schedule names its scenario by built-in name
or file path, so a :class:`~ffasim.scenario.Scenario` object is first written where the
schedules go, as the TOML file it stands for (``<out>/<name>.toml``); then ``ffasim replay``
and ``ffasim check`` reproduce it from a shell too. A scenario a file cannot hold (Python steps
or partitions) is checked through a small ``.py`` file that finds the object again in this
process, so its schedules replay only here.

``replay_file(path, variant=V)`` answers "does my fix remove it?": it runs the schedule on
another variant, following its decisions as far as that variant's execution offers the same
choices, and says whether the recorded finding happens again.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .check.schedule import Schedule
    from .check.scheduler import TraceEvent
    from .scenario import Scenario

__all__ = ["Finding", "Replay", "Report", "check_scenario", "replay_file", "same_finding"]

DEFAULT_OUT_DIR = "ffasim-findings"
"""Where schedules (and scenario objects' files) go when ``out`` is not given, as on the CLI."""


@dataclass(frozen=True)
class Finding:
    """One finding: its kind (``assertion``, ``data-race``...), its one-line message, and the
    schedule file that replays it (``None`` for a finding seen during a replay)."""

    kind: str
    message: str
    schedule: Path | None = None

    def summary(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass
class Report:
    """What a check explored and found."""

    findings: list[Finding] = field(default_factory=list)
    executions: int = 0
    exhausted: bool = False
    """The strategy explored everything it would (within its preemption bound, if any)."""
    exhaustive: bool = False
    """Every schedule and every injectable fault was explored: "nothing found" is a proof."""
    notes: list[str] = field(default_factory=list)
    """Consequences of injected faults that Xen accepts by design (``--strict`` on the CLI
    makes them findings), and ``faults`` specs that matched no fault site."""
    scenario: str = ""
    variant: str = ""


@dataclass
class Replay:
    """A schedule run again."""

    reproduced: bool
    """The finding the schedule recorded happened again."""
    finding: Finding | None
    """That finding, as it happened this time (``None`` when it did not)."""
    findings: list[Finding]
    """Everything this execution found."""
    trace: list[TraceEvent]
    scenario: str
    """The scenario the schedule names (a built-in's name or a file's path)."""
    variant: str
    followed: bool
    """Every decision of the schedule was taken as recorded. Always true on the schedule's own
    variant (leaving it there is an error); on another variant, false means the execution
    offered other choices somewhere, and a finding that did not reproduce may still be
    reachable: ``check_scenario`` on that variant is the proof."""


# A place in a file (``xen/variants/seed_v1.py:192``, ``[s.toml:16]``): only the name counts.
_SOURCE_PLACE = re.compile(r"(?:[^\s\[\]()]*/)?([^\s/\[\]()]+\.(?:py|toml))(?::\d+)?")
# Where a panic was raised, after its message: "(at xen/ffa_rxtx.py:301 f <- g.py:9 h)".
_RAISED_AT = re.compile(r" \(at [^()]*\)$")


def same_finding(found: str, recorded: str, *, other_variant: bool = False) -> bool:
    """Whether the finding summary ``found`` is the one a schedule ``recorded``. File names
    count, their line numbers do not (the model is edited between a check and its replay); on
    ``other_variant`` the place a panic was raised does not count either (a variant overrides
    the function that raises it)."""
    if found == recorded:
        return True
    a, b = _SOURCE_PLACE.sub(r"\1", found), _SOURCE_PLACE.sub(r"\1", recorded)
    if other_variant:
        a, b = _RAISED_AT.sub("", a), _RAISED_AT.sub("", b)
    return a == b


def check_scenario(
    target: Scenario | str | os.PathLike[str],
    *,
    variant: str = "reference",
    strategy: str | None = None,
    budget: int | None = None,
    time_limit: float | None = None,
    faults: Sequence[str] = (),
    preemption_bound: int | None = None,
    out: str | os.PathLike[str] | None = None,
    hypervisor: str | None = None,
    workers: int = 1,
    backend: str = "local",
) -> Report:
    """Check ``target`` (a ``Scenario`` object, a built-in scenario's name, or the path of a
    TOML or Python scenario file) as ``ffasim check`` does, with its defaults: the portfolio
    strategy, a budget of 1000 executions, stop at the first finding, minimise it, and write its
    schedule under ``out`` (default ``./ffasim-findings``). ``workers`` above 1 explores in
    that many processes (``backend`` ``"ray"``: on Ray), with the same findings for the same
    seed whatever their number. Raises ``ScenarioError`` for a bad scenario and
    ``CheckError`` for bad options; a finding is a result, not an exception.

    ``hypervisor`` puts ``xen`` or ``pkvm`` in front of the SPMC instead of the scenario's own.
    A scenario under pKVM runs on pKVM's ``head`` when ``variant`` is left at ``reference``,
    which is a Xen variant."""
    from .scenario import Scenario
    from .scenario._check import DEFAULT_BUDGET, load_scenario
    from .scenario._check import check_scenario as run_check

    out_dir = Path(DEFAULT_OUT_DIR if out is None else out)
    spec = _scenario_file(target, out_dir) if isinstance(target, Scenario) else os.fspath(target)
    if variant == "reference" and load_scenario(spec, hypervisor).hypervisor == "pkvm":
        variant = "head"
    report = run_check(
        spec,
        variant=variant,
        hypervisor=hypervisor,
        strategy=strategy,
        budget=DEFAULT_BUDGET if budget is None else budget,
        time_limit=time_limit,
        faults=list(faults) or None,
        preemption_bound=preemption_bound,
        out_dir=out_dir,
        workers=workers,
        backend=backend,
    )
    return Report(
        findings=[Finding(i.finding.kind, i.finding.message, i.path) for i in report.issues],
        executions=report.executions,
        exhausted=report.exhausted,
        exhaustive=report.exhaustive,
        notes=[
            *report.notes,
            *(
                f"faults '{spec}' matched no fault site this scenario reaches"
                for spec in report.unmatched_faults
            ),
        ],
        scenario=report.scenario,
        variant=report.variant,
    )


def replay_file(path: str | os.PathLike[str], *, variant: str | None = None) -> Replay:
    """Run the schedule file ``path`` again, on its own variant or on ``variant``.

    On its own variant the execution must follow the schedule exactly
    (``ReplayDivergence`` when the model changed since). On another variant it follows the
    decisions while that variant offers the same choices, then runs on without preemptions;
    ``reproduced`` says whether the recorded finding happened. ``ScheduleError`` for a file
    that is not a schedule; ``ScenarioError`` / ``CheckError`` when its scenario or the
    variant cannot be loaded.
    """
    from .check.schedule import Schedule
    from .scenario._check import load_scenario, replay_schedule, resolve_variant

    schedule = Schedule.load(path)
    recorded_variant = schedule.variant or None
    other = variant is not None and variant != (recorded_variant or "reference")
    if other:
        scenario = load_scenario(schedule.scenario, schedule.hypervisor or None)
        resolve_variant(scenario, variant)  # a clear error for a typo
    result = replay_schedule(schedule, variant=variant, strict=not other)
    followed = not other or _follows(schedule, variant)
    findings = [Finding(f.kind, f.message) for f in result.findings]
    again = _recorded(schedule, findings, other)
    if again is not None:
        again = Finding(again.kind, again.message, Path(path))
    return Replay(
        reproduced=again is not None,
        finding=again,
        findings=findings,
        trace=list(result.trace),
        scenario=schedule.scenario,
        variant=variant or recorded_variant or "reference",
        followed=followed,
    )


def _follows(schedule: Schedule, variant: str | None) -> bool:
    """Whether ``variant`` offers every choice ``schedule`` made, as it was recorded."""
    from .check.schedule import ReplayDivergence
    from .scenario._check import replay_schedule

    try:
        replay_schedule(schedule, variant=variant)
    except ReplayDivergence:
        return False
    return True


def _recorded(schedule: Schedule, findings: list[Finding], other: bool) -> Finding | None:
    """The finding ``schedule`` recorded, among ``findings``; with no record, the first."""
    if not schedule.finding:
        return findings[0] if findings else None
    for f in findings:
        if same_finding(f.summary(), schedule.finding, other_variant=other):
            return f
    return None


# -- scenario objects as files ----------------------------------------------------------------

_registered: dict[str, Scenario] = {}
"""Scenario objects that no file can hold, by the path of the ``.py`` file standing for them."""


def scenario_for(path: str) -> Scenario:
    """The scenario object that the generated ``.py`` file ``path`` stands for."""
    from .scenario import ScenarioError

    scenario = _registered.get(str(Path(path).resolve()))
    if scenario is None:
        raise ScenarioError(
            "this file stands for a Python scenario object of another process; check that "
            "object again to replay its findings"
        )
    return scenario


def _scenario_file(scenario: Scenario, out_dir: Path) -> str:
    """The file ``scenario`` is checked as: ``<out>/<name>.toml`` when a TOML file can hold it
    (replayable anywhere), else a ``.py`` file that finds the object in this process."""
    from .scenario import ScenarioError

    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        text = scenario.to_toml()
    except ScenarioError:
        path = (out_dir / f"{scenario.name}.py").resolve()
        path.write_text(
            f'"""Stands for the scenario object {scenario.name!r}, checked from Python."""\n\n'
            "from ffasim.api import scenario_for\n\n"
            "SCENARIO = scenario_for(__file__)\n",
            encoding="utf-8",
        )
        _registered[str(path)] = scenario
        return str(path)
    path = (out_dir / f"{scenario.name}.toml").resolve()
    path.write_text(text, encoding="utf-8")
    return str(path)
