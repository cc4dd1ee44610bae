"""The hunt loop: generate a program, explore it, keep what reached new coverage, reduce and
save what the monitors found.

Each program is explored with a small budget of executions under the checker's default
portfolio (bounded DPOR, PCT and random in turn, seed 0, so that ``ffasim check`` on the saved
file walks the same executions first) with its own fault plan (at most one fault per
execution) and every default monitor. Half the programs after the first parent are mutations
of a parent from the corpus (programs that reached new coverage, ``coverage.py``), the others
fresh draws (``generate.py``). Nothing but the seed decides the programs, their executions and
their findings: the time limit only decides how far the hunt gets.

A finding is reduced (``reduce.py``), then written to ``out_dir`` as a TOML scenario and a
schedule file that names it: ``ffasim replay`` on the schedule and ``ffasim check`` on the
TOML (with the printed ``--faults``) reproduce it. A ``crash`` raised inside the guest driver
or the scenario's own steps is a defect of the generated program, not of the model under test:
it is counted in ``harness`` and not reported.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..check.explore import explore, finding_key
from ..check.faults import FaultPlan
from ..check.monitor import Finding
from ..check.schedule import ReplayDivergence, Schedule
from ..check.scheduler import ExecutionResult
from ..check.scheduler import Program as CheckProgram
from ..scenario._check import (
    fault_plan,
    make_strategy,
    monitors_for,
    replay_schedule,
    resolve_variant,
    scenario_program,
)
from .coverage import Combination, Corpus, CoverageMonitor
from .generate import Program, generate, mutate
from .reduce import reduce_program, shrink_schedule_with

DEFAULT_OUT_DIR = "ffasim-findings"
PROGRAM_BUDGET = 24
"""Executions per program: the first few schedules of the portfolio (no preemption, then one)
plus PCT and random ones. Many programs explored shallowly find more than few explored
deeply (the point of swarm testing); ``ffasim check`` on a finding's file goes deeper. (A
first look of 12 executions, the rest only for programs that reached new coverage, made no
measurable difference in programs per second; 6 lost seed defect 1's ASSERT.)"""


_GUEST_SIDE = re.compile(r"\(at (guest|scenario)/")


@dataclass
class HuntFinding:
    """One finding: what, where its files are, which program found it and when."""

    kind: str
    message: str
    scenario: str
    schedule: str
    program: int
    elapsed: float
    faults: tuple[str, ...] = ()
    variant: str = ""
    reproduced: bool = True
    """Replaying the saved schedule on the saved scenario gave the same finding."""

    @property
    def check_command(self) -> str:
        faults = "".join(f" --faults {f}" for f in self.faults)
        return f"ffasim check {self.scenario} --variant {self.variant}{faults}"

    @property
    def replay_command(self) -> str:
        return f"ffasim replay {self.schedule}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "scenario": self.scenario,
            "schedule": self.schedule,
            "program": self.program,
            "elapsed": round(self.elapsed, 3),
            "faults": list(self.faults),
            "reproduced": self.reproduced,
            "check": self.check_command,
            "replay": self.replay_command,
        }


@dataclass
class HuntReport:
    """What a hunt did and found (the fields of ``ffasim hunt --json``)."""

    variant: str
    seed: int
    hypervisor: str = "xen"
    programs: int = 0
    executions: int = 0
    elapsed: float = 0.0
    coverage: dict[str, Any] = field(default_factory=lambda: {"combinations": 0})
    findings: list[HuntFinding] = field(default_factory=list)
    stopped: str = ""
    """``finding``, ``time-limit``, ``programs`` (the program cap of the Python API) or
    ``interrupted`` (Ctrl-C)."""
    harness: list[str] = field(default_factory=list)
    """Crashes of the generated programs themselves (not findings)."""
    notes: list[str] = field(default_factory=list)
    """Accepted consequences of injected faults the executions reported (not findings)."""

    @property
    def found(self) -> bool:
        return bool(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "hypervisor": self.hypervisor,
            "seed": self.seed,
            "programs": self.programs,
            "executions": self.executions,
            "elapsed": round(self.elapsed, 3),
            "coverage": dict(self.coverage),
            "findings": [f.to_json() for f in self.findings],
            "stopped_by": self.stopped,
            "harness": list(self.harness),
            "notes": list(self.notes),
        }


Progress = Callable[[HuntReport, Program], None]


class _Runner:
    """Explores programs as the hunt does (also for the reducer's candidates)."""

    def __init__(self, variant: str, budget: int) -> None:
        self.variant = variant
        self.budget = budget
        self.executions = 0

    def program_of(self, p: Program) -> CheckProgram:
        return scenario_program(p.scenario, self.variant)

    @staticmethod
    def plan_of(p: Program) -> FaultPlan | None:
        return fault_plan(list(p.faults)) if p.faults else None

    def explore(
        self,
        p: Program,
        reached: set[Combination] | None,
        time_limit: float | None = None,
        budget: int | None = None,
    ) -> Any:
        # One lock-order memory for this program's exploration; pKVM's monitors under pKVM.
        defaults = monitors_for(p.scenario)

        def monitors() -> list[Any]:
            extra = [CoverageMonitor(reached)] if reached is not None else []
            return [*defaults(), *extra]

        report = explore(
            self.program_of(p),
            make_strategy("portfolio", seed=0),
            monitors_factory=monitors,
            budget=self.budget if budget is None else budget,
            time_limit=time_limit,
            stop_on_first=True,
            faults=self.plan_of(p),
            max_faults=1,
        )
        self.executions += report.executions
        return report

    def first_finding(self, p: Program) -> tuple[Finding, ExecutionResult] | None:
        report = self.explore(p, None)
        for f, r in report.findings:
            if not is_harness(f) and artefact(f) is None:
                return f, r
        return None


@dataclass(frozen=True)
class Artefact:
    """A kind of monitor report that is not a defect of the code under test, with why."""

    kind: str
    message: re.Pattern[str]
    why: str


ARTEFACTS: tuple[Artefact, ...] = (
    Artefact(
        "double-fetch",
        re.compile(
            r"^xen reads bytes 0x([0-2]?[0-9a-f])\.\.0x[0-9a-f]+ of guest-writable .* twice in "
            r"\S+'s FFA_MEM_(SHARE|LEND|DONATE)_(32|64) "
        ),
        "aliased fields: a guest-chosen EMAD or composite offset (or a concurrent rewrite of "
        "it) makes Xen read bytes of the transaction header again as another field. Xen reads "
        "every field once (read_mem_transaction(); ffa_handle_mem_share(), ffa_shm.c: "
        "ACCESS_ONCE of endpoint_id, perm, region_offs, address_range_count, total_page_count) "
        "and no check on one field guards a use of the other; the byte-range double-fetch "
        "monitor cannot tell two fields at one address apart (docs/hunt.md)",
    ),
    Artefact(
        "double-fetch",
        re.compile(
            r"^xen reads bytes 0x(1[4-9a-f]|2[0-7])\.\.0x[0-9a-f]+ of guest-writable .* twice "
            r"in \S+'s FFA_MSG_SEND2 "
        ),
        "a v1.0/v1.1 sender's payload: Xen snapshots a v1.2-sized header (40 bytes) whatever "
        "the guest's version, so the first payload bytes of a v1.1 message land in the "
        "snapshot's uuid, which Xen then zeroes and ignores, before the payload is copied "
        "(ffa_handle_msg_send2(), ffa_msg.c at c447b7308b: 'for v1.1 guests, uuid[] is "
        "ignored and may contain payload bytes')",
    ),
    Artefact(
        "deadlock",
        re.compile(
            r"^\S+ waits for spmc\.[\w.]*lock held by \S+"
            r"(; \S+ waits for spmc\.[\w.]*lock held by \S+)+$"
        ),
        "Hafnium's, not Xen's: every lock of the cycle is the SPMC's, where Hafnium v2.14 "
        "leaves its documented order. api_ffa_msg_send2 holds the sender's VM lock while "
        "ffa_vm_find_locked takes the receiver's (and nwd_vms_lock first for a VM receiver); "
        "api_ffa_rxtx_unmap holds mm_stage1_lock while lock_other_world takes VM 0's lock, "
        "against a MEM_RECLAIM with the clear flag that holds VM 0's lock and clears under "
        "mm_stage1_lock (docs/findings.md, 'Also found')",
    ),
)
"""Reports the hunt records as notes, not findings; each is explained in docs/hunt.md."""


def artefact(f: Finding) -> Artefact | None:
    """The :data:`ARTEFACTS` entry that explains ``f``, if any."""
    for a in ARTEFACTS:
        if f.kind == a.kind and a.message.search(f.message):
            return a
    return None


def is_harness(f: Finding) -> bool:
    """Whether ``f`` is a crash of the generated program's own guest side."""
    return f.kind == "crash" and _GUEST_SIDE.search(f.message) is not None


def _save(
    reduced_program: Program,
    result: ExecutionResult,
    finding: Finding,
    variant: str,
    seed: int,
    out_dir: Path,
) -> tuple[Path, Path, bool]:
    """Write the scenario and the schedule; whether the schedule replays to the finding."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"hunt-{variant}-s{seed}-p{reduced_program.index}-{finding.kind}"
    toml = out_dir / f"{stem}.toml"
    n = 2
    while toml.exists():
        toml = out_dir / f"{stem}-{n}.toml"
        n += 1
    sc = reduced_program.scenario
    named = _renamed(sc, toml.stem)
    toml.write_text(named.to_toml(), encoding="utf-8")
    schedule = Schedule(
        decisions=list(result.decisions),
        scenario=str(toml.resolve()),
        variant=variant,
        strategy="hunt: portfolio",
        seed=seed,
        faults=list(reduced_program.faults),
        max_faults=1,
        finding=finding.summary(),
    )
    path = schedule.save_new(out_dir, toml.stem)
    try:
        again = replay_schedule(Schedule.load(path))
        ok = any(finding_key(f) == finding_key(finding) for f in again.findings)
    except ReplayDivergence:
        ok = False
    return toml, path, ok


def _renamed(sc: Any, name: str) -> Any:
    from ..scenario import Scenario

    safe = re.sub(r"[^a-z0-9_.-]", "-", name.lower())
    return Scenario(
        safe,
        f"found by ffasim hunt ({sc.name})",
        hypervisor=sc.hypervisor,
        vm_to_vm=sc.vm_to_vm,
        spmc_version=sc.spmc_version,
        vms=sc.vms,
        partitions=sc.partitions,
        setup=sc.setup,
        threads=sc.threads,
        final=sc.final,
    )


def hunt(
    variant: str = "reference",
    *,
    time_limit: float = 60.0,
    seed: int = 0,
    stop_at_first: bool = True,
    out_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    max_programs: int | None = None,
    budget: int = PROGRAM_BUDGET,
    reduce: bool = True,
    hypervisor: str = "xen",
) -> HuntReport:
    """Hunt for defects of ``variant`` for ``time_limit`` seconds (or ``max_programs``
    programs); see the module note. ``hypervisor="pkvm"`` hunts in pKVM's FF-A proxy (the
    programs' one caller is then the host; ``reference``, a Xen variant, means pKVM's
    ``head``). ``CheckError`` for an unknown variant or hypervisor, or a bad limit."""
    from types import SimpleNamespace

    from .._suggest import unknown
    from ..scenario._check import CheckError
    from ..system import HYPERVISORS

    if time_limit <= 0:
        raise CheckError(f"--time-limit must be positive, not {time_limit}")
    if hypervisor not in HYPERVISORS:
        raise CheckError(unknown("hypervisor", hypervisor, HYPERVISORS, listed="expected one of"))
    if hypervisor == "pkvm" and variant == "reference":
        variant = "head"
    var = resolve_variant(SimpleNamespace(hypervisor=hypervisor, variant=None), variant)
    out = Path(DEFAULT_OUT_DIR if out_dir is None else out_dir)
    report = HuntReport(var, seed, hypervisor)
    corpus = Corpus()
    runner = _Runner(var, budget)
    chooser = random.Random(f"ffasim-hunt-choose:{seed}")
    reported: set[tuple[str, str]] = set()
    start = time.monotonic()
    report.stopped = "time-limit"
    index = 0
    try:
        while True:
            left = time_limit - (time.monotonic() - start)
            if left <= 0:
                break
            if max_programs is not None and index >= max_programs:
                report.stopped = "programs"
                break
            parent = corpus.pick(chooser) if chooser.random() < 0.5 else None
            program = (
                mutate(parent, seed, index)
                if parent is not None
                else generate(seed, index, hypervisor)
            )
            index += 1
            reached: set[Combination] = set()
            explored = runner.explore(program, reached, time_limit=left)
            report.programs = index
            corpus.add(program, reached)
            for note in explored.notes:
                if note not in report.notes and len(report.notes) < 50:
                    report.notes.append(note)
            stop = False
            for f, r in explored.findings:
                if is_harness(f):
                    report.harness.append(f"program {program.index}: {f.summary()}")
                    continue
                known = artefact(f)
                if known is not None:
                    note = f"program {program.index}: {f.summary()} ({known.why})"
                    if len(report.notes) < 50:
                        report.notes.append(note)
                    continue
                if finding_key(f) in reported:
                    continue
                found = _report_finding(runner, program, (f, r), var, seed, out, reduce, start)
                reported.add(finding_key(f))
                reported.add((found.kind, _mask(found.message)))
                report.findings.append(found)
                stop = stop_at_first
                break
            report.executions = runner.executions
            report.coverage = corpus.summary()
            report.elapsed = time.monotonic() - start
            if progress is not None:
                progress(report, program)
            if stop:
                report.stopped = "finding"
                break
    except KeyboardInterrupt:
        report.stopped = "interrupted"  # Ctrl-C: report what was found so far
    report.executions = runner.executions
    report.coverage = corpus.summary()
    report.elapsed = time.monotonic() - start
    return report


def _mask(text: str) -> str:
    return re.sub(r"0x[0-9a-fA-F]+|\d+", "#", text)


def _report_finding(
    runner: _Runner,
    program: Program,
    found: tuple[Finding, ExecutionResult],
    variant: str,
    seed: int,
    out: Path,
    reduce: bool,
    start: float,
) -> HuntFinding:
    if reduce:
        reduced = reduce_program(
            program,
            found,
            runner.first_finding,
            shrink_schedule=shrink_schedule_with(runner.program_of, runner.plan_of),
        )
        prog, result, finding = reduced.program, reduced.result, reduced.finding
    else:
        prog, (finding, result) = program, found
    toml, sched, ok = _save(prog, result, finding, variant, seed, out)
    return HuntFinding(
        kind=finding.kind,
        message=finding.message,
        scenario=str(toml),
        schedule=str(sched),
        program=program.index,
        elapsed=time.monotonic() - start,
        faults=prog.faults,
        variant=variant,
        reproduced=ok,
    )
