"""Shrink a finding's program to a readable counterexample.

Passes, each greedy and deterministic, in this order: drop the fault injection, drop a VM
(renumbering the others), replace 64 partitions by the defaults, drop a thread, a thread's
step, a setup step; narrow the faults to the sites the execution injected; then shrink the
schedule (fewer preemptions, faults and steps) with the checker's own minimiser
(:func:`ffasim.check.explore.minimise`). A candidate is kept only when exploring it as the hunt
explored the original finds the *same* finding (kind and message, numbers masked:
:func:`~ffasim.check.explore.finding_key`), so a reduction never trades one bug for another.
The number of candidates tried is capped, not timed, so the result depends on the seed alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..check.explore import finding_key, minimise
from ..check.monitor import Finding
from ..check.scheduler import ExecutionResult
from ..scenario import Scenario, ScenarioError, Step, ThreadSpec
from ..scenario._check import monitors_for
from .generate import Program

Explorer = Callable[[Program], "tuple[Finding, ExecutionResult] | None"]
"""Explores a candidate as the hunt does; the execution that shows the target finding, if
any."""


@dataclass
class Reduced:
    """A shrunk finding: the program, the execution that shows it and its finding."""

    program: Program
    result: ExecutionResult
    finding: Finding
    candidates: int


def _rebuild(program: Program, **changes: Any) -> Program | None:
    sc = program.scenario
    fields: dict[str, Any] = {
        "vms": sc.vms,
        "setup": sc.setup,
        "threads": sc.threads,
        "partitions": sc.partitions,
    }
    fields.update(changes)
    try:
        scenario = Scenario(
            sc.name,
            sc.description,
            variant=sc.variant,
            hypervisor=sc.hypervisor,
            vm_to_vm=sc.vm_to_vm,
            spmc_version=sc.spmc_version,
            **fields,
        )
    except ScenarioError:
        return None
    return replace(program, scenario=scenario)


def _renumber(st: Step, drop: int) -> Step | None:
    """``st`` with VM indices above ``drop`` moved down one; None when it names ``drop``."""
    if st.vm == drop or st.params.get("vm") == drop:
        return None
    vm = st.vm - 1 if st.vm is not None and st.vm > drop else st.vm
    params = dict(st.params)
    if isinstance(params.get("vm"), int) and params["vm"] > drop:
        params["vm"] -= 1
    return replace(st, vm=vm, params=params)


def _without_vm(program: Program, drop: int) -> Program | None:
    sc = program.scenario
    if len(sc.vms) < 2:
        return None
    setup = [s for s in (_renumber(st, drop) for st in sc.setup) if s is not None]
    threads = []
    for t in sc.threads:
        if t.vm == drop:
            continue
        steps = tuple(s for s in (_renumber(st, drop) for st in t.steps) if s is not None)
        if not steps:
            continue
        vm = t.vm - 1 if t.vm is not None and t.vm > drop else t.vm
        threads.append(replace(t, vm=vm, steps=steps))
    vms = [v for i, v in enumerate(sc.vms) if i != drop]
    layouts = tuple(lay for i, lay in enumerate(program.layouts) if i != drop)
    out = _rebuild(program, vms=vms, setup=setup, threads=threads)
    return replace(out, layouts=layouts) if out is not None else None


def _candidates(program: Program) -> list[Callable[[], Program | None]]:
    """Smaller programs, biggest cuts first (each built lazily: the list is long)."""
    sc = program.scenario
    out: list[Callable[[], Program | None]] = []
    if program.faults:  # early: a finding without faults is the easiest to read
        out.append(lambda: replace(program, faults=()))
    for i in reversed(range(len(sc.vms))):
        out.append(lambda i=i: _without_vm(program, i))  # type: ignore[misc]
    if isinstance(sc.partitions, (list, tuple)) and len(sc.partitions) > 3:
        parts = list(sc.partitions)
        out.append(lambda: _rebuild(program, partitions=None))  # the three defaults
        out.append(lambda parts=parts: _rebuild(program, partitions=parts[:3]))  # type: ignore[misc]
    for i in reversed(range(len(sc.threads))):
        threads = [t for k, t in enumerate(sc.threads) if k != i]
        out.append(lambda threads=threads: _rebuild(program, threads=threads))  # type: ignore[misc]
    for i, t in enumerate(sc.threads):
        for j in reversed(range(len(t.steps))):
            if len(t.steps) < 2:
                continue
            steps = t.steps[:j] + t.steps[j + 1 :]
            threads = list(sc.threads)
            threads[i] = ThreadSpec(steps, vm=t.vm, vcpu=t.vcpu, context=t.context)
            out.append(lambda threads=threads: _rebuild(program, threads=threads))  # type: ignore[misc]
    for j in reversed(range(len(sc.setup))):
        setup = sc.setup[:j] + sc.setup[j + 1 :]
        out.append(lambda setup=setup: _rebuild(program, setup=setup))  # type: ignore[misc]
    return out


def _size(p: Program) -> tuple[int, int, int, int, int]:
    sc = p.scenario
    steps = sum(len(t.steps) for t in sc.threads) + len(sc.setup)
    parts = (
        3
        if sc.partitions is None
        else len(sc.partitions)
        if isinstance(sc.partitions, (list, tuple))
        else 3
    )
    return (len(sc.vms), parts, len(sc.threads), steps, len(p.faults))


def reduce_program(
    program: Program,
    found: tuple[Finding, ExecutionResult],
    explore_one: Explorer,
    *,
    max_candidates: int = 60,
    shrink_schedule: Callable[[Program, ExecutionResult, str], ExecutionResult] | None = None,
) -> Reduced:
    """Shrink ``program`` while ``explore_one`` still finds ``found``'s finding."""
    finding, result = found
    key = finding_key(finding)
    best, best_found = program, (finding, result)
    tried = 0
    improved = True
    while improved and tried < max_candidates:
        improved = False
        for make in _candidates(best):
            if tried >= max_candidates:
                break
            cand = make()
            if cand is None or _size(cand) >= _size(best):
                continue
            tried += 1
            got = explore_one(cand)
            if got is not None and finding_key(got[0]) == key:
                best, best_found = cand, got
                improved = True
                break
    f, r = best_found
    sites = tuple(sorted({site for _, site, _ in r.faults}))
    if best.faults and sites != best.faults and tried < max_candidates:
        # Narrow "--faults all" to the sites the execution injected (none: no --faults).
        narrow = replace(best, faults=sites)
        got = explore_one(narrow)
        tried += 1
        if got is not None and finding_key(got[0]) == key:
            best, (f, r) = narrow, got
    if shrink_schedule is not None:
        smaller = shrink_schedule(best, r, f.kind)
        same = next((g for g in smaller.findings if finding_key(g) == key), None)
        if same is not None:
            f, r = same, smaller
    return Reduced(best, r, f, tried)


def shrink_schedule_with(
    program_of: Callable[[Program], Any], plan_of: Callable[[Program], Any]
) -> Callable[[Program, ExecutionResult, str], ExecutionResult]:
    """The checker's schedule minimiser, for a program built by ``program_of`` under the
    fault plan ``plan_of`` gives."""

    def shrink(p: Program, r: ExecutionResult, kind: str) -> ExecutionResult:
        return minimise(
            program_of(p),
            r,
            monitors_for(p.scenario),
            faults=plan_of(p),
            max_faults=1,
            kind=kind,
            max_attempts=150,
        )

    return shrink


__all__ = ["Reduced", "reduce_program", "shrink_schedule_with"]
