"""Check a scenario end to end, and replay a saved schedule: what ``ffasim check`` and
``ffasim replay`` run.

:func:`check_scenario` loads a scenario, explores its interleavings (and injected faults) with
a strategy and the default monitors, minimises each finding toward fewer preemptions and fewer
steps, and saves its schedule to a new file under ``out_dir``. :func:`replay_file` runs a saved
schedule again, decision for decision, and returns the execution with its trace.

Everything a user can get wrong (a scenario name, a variant, a fault spec, a strategy, a
schedule file) raises :class:`CheckError` (or the scenario's ``ScenarioError``, the schedule's
``ScheduleError``), whose ``str()`` is one line.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import abi
from .._suggest import unknown
from ..check.digest import Opaque
from ..check.explore import ExploreReport, explore, finding_key, minimise, replay
from ..check.faults import FaultPlan, FaultSpecError, parse_faults
from ..check.monitor import Finding, Monitor
from ..check.monitors import monitor_set
from ..check.monitors.leak import LEAK_PREFIX
from ..check.schedule import Schedule
from ..check.scheduler import NOTE_PREFIX, ExecutionResult, Program, TraceEvent
from ..check.strategies.base import Strategy
from ..machine import Machine, ModelError, Thread
from ._accepted import accepted
from ._model import DEFAULT_VARIANTS, hypervisor_variants

STRATEGIES: tuple[str, ...] = ("portfolio", "dfs", "pct", "random")
"""Strategy names ``--strategy`` accepts; ``portfolio`` (the default) takes turns of the others
(``check/strategies/portfolio.py``)."""

DEFAULT_SCENARIOS = {"xen": "default", "pkvm": "pkvm-default"}
"""The scenario a command runs when given none, per hypervisor."""

DEFAULT_BUDGET = 1000
"""Executions per check when no budget is given: enough to exhaust the built-in two-vCPU
scenarios under DPOR, small enough to answer in seconds."""

DEFAULT_OUT_DIR = "ffasim-findings"

PCT_DEPTH = 3
"""PCT's bug depth d: finds every bug that needs at most d-1 ordering constraints with
probability at least 1/(n*k^(d-1)) per execution."""


class CheckError(ValueError):
    """Bad input to a check or a replay; ``str()`` is one line for the user."""


@dataclass
class FoundIssue:
    """One finding of a check, with the minimised execution that shows it and its schedule."""

    finding: Finding
    result: ExecutionResult  # minimised, with its trace
    schedule: Schedule
    path: Path | None
    also: list[Finding] = field(default_factory=list)
    """Other findings of the same execution (the consequences a first problem often has:
    a lock leaked by a hypercall is also still held at teardown)."""
    found_by: str = ""
    """The strategy (or the portfolio's part: ``dfs (bound 1)``, ``pct``, ``random``) whose
    execution found it."""

    @property
    def replay_command(self) -> str:
        return f"ffasim replay {self.path}" if self.path is not None else ""

    @property
    def locks_held(self) -> list[tuple[str, str]]:
        """``(lock, holder)`` of the locks held when the finding happened."""
        return locks_held_at(self.result.trace, self.finding.step)

    @property
    def in_flight(self) -> list[str]:
        """``"d0v0 FFA_PARTITION_INFO_GET"`` for every hypercall under way when the finding
        happened, the other vCPUs' included: the interleaving at a glance."""
        return calls_in_flight_at(self.result.trace, self.finding.step)

    def to_json(self) -> dict[str, Any]:
        f = self.finding
        return {
            "kind": f.kind,
            "message": f.message,
            "threads": list(f.threads),
            "calls": list(f.calls),
            "step": f.step,
            "locks_held": [list(x) for x in self.locks_held],
            "in_flight": self.in_flight,
            "schedule": str(self.path) if self.path is not None else None,
            "replay": self.replay_command,
            "preemptions": self.result.preemptions,
            "steps": self.result.steps,
            "faults": [list(x) for x in self.result.faults],
            "also": [g.summary() for g in self.also],
            "found_by": self.found_by,
        }


@dataclass
class CheckReport:
    """What a check did and found."""

    scenario: str
    variant: str
    strategy: str
    seed: int
    faults: tuple[str, ...]
    max_faults: int
    budget: int | None
    executions: int = 0
    exhausted: bool = False
    """The strategy explored everything it would (within its bound, if any)."""
    exhaustive: bool = False
    """Every schedule and every injectable fault was explored: "nothing found" is a proof,
    for this scenario and these fault specs."""
    covered_bound: int | None = None
    """Every schedule with at most this many preemptions was explored (``None``: not even all
    of the non-preempting ones)."""
    stopped: str = ""
    """Why the search ended: ``exhausted``, ``finding``, ``budget``, ``time-limit`` or
    ``interrupted``."""
    elapsed: float = 0.0
    steps: int = 0
    issues: list[FoundIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Accepted consequences of injected faults (``_accepted.py``): not findings."""
    hypervisor: str = "xen"
    """What stood in front of the SPMC: ``xen`` or ``pkvm``."""
    unmatched_faults: tuple[str, ...] = ()
    """The ``--faults`` specs that matched no fault site the executions offered (a typo, or a
    site this scenario never reaches): nothing was injected for them."""

    @property
    def found(self) -> bool:
        return bool(self.issues)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "variant": self.variant,
            "hypervisor": self.hypervisor,
            "strategy": self.strategy,
            "seed": self.seed,
            "faults": list(self.faults),
            "max_faults": self.max_faults,
            "budget": self.budget,
            "executions": self.executions,
            "exhausted": self.exhausted,
            "exhaustive": self.exhaustive,
            "covered_bound": self.covered_bound,
            "stopped_by": self.stopped,
            "elapsed": round(self.elapsed, 3),
            "steps": self.steps,
            "findings": [i.to_json() for i in self.issues],
            "notes": list(self.notes),
            "unmatched_faults": list(self.unmatched_faults),
        }


# -- building blocks --------------------------------------------------------------------------


class _SitesOffered:
    """A fault plan that also notes every site the executions offered it, so that a spec
    matching none of them can be reported instead of silently injecting nothing."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.seen: set[str] = set()

    def __call__(self, site: str) -> tuple[int, ...] | None:
        self.seen.add(site)
        return self.plan(site)

    def unmatched(self) -> tuple[str, ...]:
        out = []
        for spec in self.plan.specs:
            one = parse_faults([spec])
            if one is not None and not any(one(site) for site in self.seen):
                out.append(spec)
        return tuple(out)


def load_scenario(spec: str | None, hypervisor: str | None = None) -> Any:
    """The scenario named by ``spec`` (built-in name, .toml or .py path; None: the default
    one of ``hypervisor``), run under ``hypervisor`` (None: the scenario's own)."""
    from . import load

    if spec is None:
        spec = DEFAULT_SCENARIOS.get(hypervisor or "xen", "default")
    return load(spec).under(hypervisor)


def resolve_variant(scenario: Any, variant: str | None) -> str:
    """``variant`` (or the scenario's own, or its hypervisor's default), checked against the
    variants of the scenario's hypervisor."""
    hypervisor = getattr(scenario, "hypervisor", "xen")
    name = variant or getattr(scenario, "variant", None) or DEFAULT_VARIANTS[hypervisor]
    names = hypervisor_variants(hypervisor)
    if name not in names:
        what = "variant" if hypervisor == "xen" else f"{hypervisor} variant"
        raise CheckError(unknown(what, name, names))
    return name


def refusal(e: Any) -> str:
    """Why Xen refused a domain (a ``DomainCreationError``), by errno name, with the usual
    cause."""
    name = errno.errorcode.get(-e.errno, "")
    why = f"Xen refused to create d{e.domid}: {'-' + name if name else 'error'} ({e.errno})"
    if -e.errno == errno.EIO:
        why += ", a partition answered VM created with an error"
    elif -e.errno == errno.ENODEV:
        why += (
            ", its FF-A probe at boot failed (Xen 4.19 needs an SPMC of FF-A 1.1: "
            'spmc_version = "1.1"; head refuses 64 partitions)'
        )
    return why


def monitors_for(scenario: Any) -> Callable[[], list[Monitor]]:
    """A monitor factory for one exploration of ``scenario`` (its monitors share what outlives
    an execution, the lock-order graph): every default monitor, and under pKVM the pKVM proxy's
    too (but those a program leaves out, see ``_programs.py``)."""
    defaults = monitor_set()
    if getattr(scenario, "hypervisor", "xen") != "pkvm":
        return defaults
    from ..check.monitors.pkvm import PKVM_MONITORS

    skip: frozenset[str] = getattr(scenario, "skip_monitors", frozenset())
    chosen = [cls for name, cls in PKVM_MONITORS.items() if name not in skip]

    def monitors() -> list[Monitor]:
        return defaults() + [cls() for cls in chosen]

    return monitors


def scenario_program(scenario: Any, variant: str, *, strict: bool = False) -> Program:
    """The checker's program for ``scenario`` under ``variant``: build the system on the
    execution's machine, hand over the threads and the finish step (teardown and oracle).

    When the execution injected a fault, the finish step's spec lines (guest-visible results
    the oracle rejects) are dropped: an SPMC made to answer DENIED legitimately makes a guest
    see DENIED. Its leak lines stay, since a failure path must clean up like any other, except
    those that a rule of ``_accepted.py`` explains as what Xen does on purpose after that
    failure: they become notes (``strict`` keeps them as findings). For the same reason a
    domain whose creation Xen refuses because of an injected fault ends the execution quietly
    (a refusal is the correct answer), while without a fault it is a crash.
    """

    def program(machine: Machine) -> tuple[list[Thread], Callable[[], list[str]] | None]:
        from ..pkvm import PkvmInitError
        from ..system import DomainCreationError

        try:
            inst = scenario.instantiate(variant, machine=machine)
        except (DomainCreationError, PkvmInitError) as e:
            if getattr(machine.sink, "injected", None):
                # Xen refused the domain (or pKVM its FF-A proxy) cleanly because of the
                # injected fault, as it must: there is no system left to interleave.
                return [], None
            # Without a fault, a refusal is what the guest sees: no FF-A (Xen 4.19 with an
            # FF-A 1.2 SPMC, head with 64 partitions). One finding that says why.
            why = (
                f"the scenario's VMs cannot use FF-A: {refusal(e)}"
                if isinstance(e, DomainCreationError)
                else f"pKVM's FF-A proxy failed to initialise: {e}"
            )
            return [], lambda: [why]
        # The ownership monitor reads the SPMC's mailbox states through the machine; a
        # cross-check fingerprints the instance (see scenario_state).
        if inst.system is not None:  # None: a pKVM program whose proxy failed to initialise
            machine.system = inst.system  # type: ignore[attr-defined]
        # Opaque: its results are in execution order, which is not part of the state.
        machine.scenario_instance = Opaque(inst)  # type: ignore[attr-defined]

        def finish() -> list[str]:
            lines = list(inst.finish())
            injected = getattr(machine.sink, "injected", None)
            if not injected:
                return lines
            out = []
            for ln in lines:
                if not ln.startswith(LEAK_PREFIX):
                    continue
                why = None if strict else accepted(injected, ln[len(LEAK_PREFIX) :])
                out.append(ln if why is None else f"{NOTE_PREFIX}{ln} ({why})")
            return out

        threads = [Thread(t.name, _tolerant(machine, t)) for t in inst.threads]
        return threads, finish

    return program


def scenario_state(machine: Machine) -> str:
    """The terminal state of a scenario execution on ``machine``: the whole system and what
    each step got (per thread, in step order), as a fingerprint (``check.digest``)."""
    from ..check.digest import fingerprint

    # On the machine itself, not in a weak map keyed by it: the instance refers to the
    # machine, so a map's value would keep every execution's system alive.
    inst = machine.scenario_instance.value  # type: ignore[attr-defined]
    records = sorted(inst.results, key=lambda r: (r.thread, r.phase, r.index))
    return fingerprint(inst.system, records)


_GUEST_SIDE = ("/ffasim/guest/", "/ffasim/scenario/")


def _raised_by_guest_side(e: BaseException) -> bool:
    """Whether ``e`` was raised by the scenario's own guest program (the guest driver or a
    scenario step), not by the hypervisor or firmware models below it."""
    tb = e.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return False
    name = last.tb_frame.f_code.co_filename.replace("\\", "/")
    return any(part in name for part in _GUEST_SIDE)


def _tolerant(machine: Machine, t: Thread) -> Callable[[], None]:
    """``t``'s body, except that once a fault was injected, a guest program that cannot go on
    (the driver finds no TX buffer because the injected fault made FFA_RXTX_MAP fail) ends
    its thread with a log line instead of a crash: the guest's inability to continue is the
    expected consequence of the fault, not a defect of the hypervisor or firmware. Without an
    injected fault it is still a crash, since the scenario itself is broken."""

    def body() -> None:
        try:
            t.body()
        except ModelError:
            raise
        except Exception as e:
            if not getattr(machine.sink, "injected", None) or not _raised_by_guest_side(e):
                raise
            machine.sink.log(t.name, f"guest program stops after the injected fault: {e}")

    return body


@dataclass(frozen=True)
class ScenarioSource:
    """A scenario's program as a worker process rebuilds it (``check/shards.py``): the
    scenario by name or path, the variant, ``strict``, the fault specs and the hypervisor it
    was moved under (empty: its own). A worker's lock-order memory is its own: an inversion
    whose two orders fall to different workers is not reported."""

    scenario: str
    variant: str
    strict: bool = False
    faults: tuple[str, ...] = ()
    hypervisor: str = ""

    def build(self) -> tuple[Program, Callable[[], list[Any]], _SitesOffered | None]:
        scenario = load_scenario(self.scenario, self.hypervisor or None)
        plan = fault_plan(self.faults)
        offered = _SitesOffered(plan) if plan is not None else None
        program = scenario_program(scenario, self.variant, strict=self.strict)
        return program, monitors_for(scenario), offered


def make_strategy(
    name: str, *, seed: int = 0, preemption_bound: int | None = None, depth: int = PCT_DEPTH
) -> Strategy:
    """A fresh strategy by name: ``portfolio`` (iterative preemption bounding up to the bound,
    PCT and random in turn), ``dfs`` (DPOR, optional preemption bound), ``pct``, ``random``."""
    from ..check import strategies

    # The explorer enforces the budget; the strategies' own execution caps are lifted.
    if name == "portfolio":
        return strategies.PortfolioStrategy(seed=seed, max_bound=preemption_bound, pct_depth=depth)
    if name == "dfs":
        return strategies.DFSStrategy(preemption_bound=preemption_bound)
    if name == "pct":
        return strategies.PCTStrategy(seed=seed, depth=depth, executions=None)
    if name == "random":
        return strategies.RandomStrategy(seed=seed, executions=None)
    raise CheckError(unknown("strategy", name, STRATEGIES, listed="expected one of"))


def fault_plan(specs: Sequence[str] | None) -> FaultPlan | None:
    try:
        return parse_faults(list(specs) if specs else None)
    except FaultSpecError as e:
        raise CheckError(str(e)) from None


def _scenario_ref(spec: str) -> str:
    """How a schedule names its scenario: a built-in name as is, a file by absolute path (so
    that ``ffasim replay`` works from any directory)."""
    p = Path(spec)
    if p.suffix in (".toml", ".py") and p.is_file():
        return str(p.resolve())
    return spec


def _stem(scenario: str, variant: str, kind: str) -> str:
    base = Path(scenario).stem if scenario.endswith((".toml", ".py")) else scenario
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{base}-{variant}-{kind}")
    return safe


def _matching(result: ExecutionResult, finding: Finding) -> Finding | None:
    """The finding of ``result`` that is ``finding`` (same key), else one of the same kind."""
    found = result.findings
    key = finding_key(finding)
    for f in found:
        if finding_key(f) == key:
            return f
    for f in found:
        if f.kind == finding.kind:
            return f
    return None


class _Contexts:
    """Replays a trace's hypercall boundaries to tell which context each event belongs to.

    Trace events carry the checker thread that ran them; inside a hypercall, the context is
    the calling vCPU (the hypercall event's ``detail``), which differs from the thread while
    the scenario's setup runs its vCPUs' calls in the ``boot`` thread.
    """

    def __init__(self) -> None:
        self.stacks: dict[str, list[tuple[str, str]]] = {}  # thread -> [(context, FF-A call)]

    def see(self, ev: TraceEvent) -> None:
        if ev.kind in ("call", "ret") and len(ev.data) >= 2 and ev.data[0] == "hvc":
            stack = self.stacks.setdefault(ev.thread, [])
            if ev.kind == "call":
                stack.append((ev.detail or ev.thread, abi.name(ev.data[1][0])))
            elif stack:
                stack.pop()

    def context(self, ev: TraceEvent) -> str:
        stack = self.stacks.get(ev.thread)
        return stack[-1][0] if stack else ev.thread


def calls_in_flight_at(trace: Sequence[TraceEvent], index: int) -> list[str]:
    """The hypercalls entered and not yet returned just before trace event ``index`` (all of
    the trace when negative), outermost per context, in the order they were entered."""
    ctxs = _Contexts()
    end = index if index >= 0 else len(trace)
    for ev in trace[:end]:
        ctxs.see(ev)
    return [f"{stack[0][0]} {stack[0][1]}" for stack in ctxs.stacks.values() if stack]


def locks_held_at(trace: Sequence[TraceEvent], index: int) -> list[tuple[str, str]]:
    """``(lock, holder)`` for every lock held just before trace event ``index`` (all of the
    trace when negative): who else was in the way when a finding happened. The holder is the
    context (the vCPU whose hypercall took the lock), as in the finding messages."""
    ctxs = _Contexts()
    held: dict[str, list[str]] = {}
    end = index if index >= 0 else len(trace)
    for ev in trace[:end]:
        ctxs.see(ev)
        if ev.kind == "lock":
            held.setdefault(ev.detail, []).append(ctxs.context(ev))
        elif ev.kind == "unlock":
            holders = held.get(ev.detail, [])
            who = ctxs.context(ev)
            if who in holders:
                holders.remove(who)
            elif holders:
                holders.pop(0)  # released by another context than took it: trust the trace
    return [(lock, t) for lock, holders in held.items() for t in holders]


# -- the two entry points ---------------------------------------------------------------------


def check_scenario(
    scenario_spec: str | None = None,
    *,
    variant: str | None = None,
    hypervisor: str | None = None,
    strategy: str | None = None,
    budget: int | None = DEFAULT_BUDGET,
    seed: int = 0,
    faults: Sequence[str] | None = None,
    max_faults: int = 1,
    preemption_bound: int | None = None,
    time_limit: float | None = None,
    out_dir: str | os.PathLike[str] | None = DEFAULT_OUT_DIR,
    progress: bool = False,
    stop_on_first: bool = True,
    minimise_findings: bool = True,
    strict: bool = False,
    catch_interrupt: bool = False,
    workers: int = 1,
    backend: str = "local",
    ray_address: str | None = None,
) -> CheckReport:
    """Explore ``scenario_spec`` under ``variant`` and report what the monitors find.

    ``scenario_spec`` None is the default scenario of ``hypervisor`` (``xen`` unless given);
    ``hypervisor`` runs the scenario under that hypervisor instead of its own.
    ``strategy`` ``None`` is the portfolio (``check/strategies/portfolio.py``). Each finding
    is minimised (fewer preemptions, then fewer steps and faults, same kind) and its schedule
    saved under ``out_dir`` (``None``: not saved). Consequences of injected faults that the
    mediator accepts by design are notes, not findings, unless ``strict``. With
    ``catch_interrupt``, Ctrl-C ends the search early and the findings so far are reported
    and saved (not minimised). ``workers`` above 1 or ``backend`` ``"ray"`` explores in
    worker processes (``check/parallel.py``): the same findings and verdict for the same seed
    whatever the number of workers, though not always the executions of ``workers=1``, which
    runs in this process as it always did. Raises :class:`CheckError`, ``ScenarioError`` for
    bad input; a finding is a result, not an exception.
    """
    strategy = strategy or "portfolio"
    if budget is not None and budget < 1:
        raise CheckError(f"--budget must be at least 1, not {budget}")
    if max_faults < 0:
        raise CheckError(f"--max-faults must be 0 or more, not {max_faults}")
    if preemption_bound is not None and preemption_bound < 0:
        raise CheckError(f"--preemption-bound must be 0 or more, not {preemption_bound}")
    if time_limit is not None and time_limit <= 0:
        raise CheckError(f"--time-limit must be positive, not {time_limit}")
    plan = fault_plan(faults)
    strat = make_strategy(strategy, seed=seed, preemption_bound=preemption_bound)
    scenario = load_scenario(scenario_spec, hypervisor)
    var = resolve_variant(scenario, variant)
    program = scenario_program(scenario, var, strict=strict)
    # One factory for the exploration and the minimisation of what it found.
    monitors = monitors_for(scenario)
    specs = plan.specs if plan is not None else ()
    offered = _SitesOffered(plan) if plan is not None else None

    if workers != 1 or backend != "local":
        source = ScenarioSource(
            _scenario_ref(scenario.name if scenario_spec is None else scenario_spec),
            var,
            strict,
            tuple(specs),
            "" if hypervisor is None else scenario.hypervisor,
        )
        explored = _explore_in_workers(
            source,
            strategy,
            offered,
            workers=workers,
            backend=backend,
            ray_address=ray_address,
            seed=seed,
            preemption_bound=preemption_bound,
            budget=budget,
            time_limit=time_limit,
            stop_on_first=stop_on_first,
            max_faults=max_faults,
            progress=progress,
            catch_interrupt=catch_interrupt,
        )
    else:
        explored = explore(
            program,
            strat,
            monitors_factory=monitors,
            budget=budget,
            time_limit=time_limit,
            stop_on_first=stop_on_first,
            faults=offered,
            max_faults=max_faults,
            progress=progress,
            catch_interrupt=catch_interrupt,
        )
    report = CheckReport(
        scenario=scenario.name,
        variant=var,
        strategy=strategy,
        seed=seed,
        faults=tuple(specs),
        max_faults=max_faults,
        budget=budget,
        executions=explored.executions,
        exhausted=explored.exhausted,
        exhaustive=explored.exhaustive,
        covered_bound=explored.covered_bound,
        stopped=explored.stopped,
        elapsed=explored.elapsed,
        steps=explored.steps,
        notes=list(explored.notes),
        hypervisor=scenario.hypervisor,
        unmatched_faults=offered.unmatched() if offered is not None else (),
    )
    if explored.stopped == "interrupted":
        minimise_findings = False  # the user wants out: save what was found, as found
    reported: set[tuple[str, str]] = set()
    for (finding, result), part in zip(explored.findings, explored.found_by, strict=True):
        if finding_key(finding) in reported:
            continue  # already shown with an earlier finding of the same execution
        shown, best = finding, result
        if minimise_findings:
            smaller = minimise(
                program,
                result,
                monitors,
                faults=plan,
                max_faults=max_faults,
                kind=finding.kind,
            )
            again = _matching(smaller, finding)
            if again is not None:
                shown, best = again, smaller
        if finding_key(shown) in reported:
            continue  # two findings that minimise to the same one
        also = [f for f in best.findings if f is not shown]
        reported.update(finding_key(f) for f in [shown, *also])
        schedule = Schedule(
            decisions=list(best.decisions),
            scenario=_scenario_ref(scenario.name if scenario_spec is None else scenario_spec),
            variant=var,
            hypervisor="" if hypervisor is None else scenario.hypervisor,
            strategy=strategy if part == strategy else f"{strategy}: {part}",
            seed=seed,
            faults=list(specs),
            max_faults=max_faults,
            finding=shown.summary(),
        )
        path = None
        if out_dir is not None:
            path = schedule.save_new(out_dir, _stem(report.scenario, var, shown.kind))
        report.issues.append(FoundIssue(shown, best, schedule, path, also, part))
    return report


def _explore_in_workers(
    source: ScenarioSource,
    strategy: str,
    offered: _SitesOffered | None,
    *,
    workers: int,
    backend: str,
    **kw: Any,
) -> ExploreReport:
    """``explore`` of ``source`` in worker processes (``check/parallel.py``); the fault sites
    the workers met join ``offered``, for the report of specs that matched none."""
    from ..check.parallel import explore_parallel
    from ..check.pools import BackendError

    if workers < 1:
        raise CheckError(f"--workers must be at least 1, not {workers}")
    if source.scenario.endswith(".py"):
        _check_loadable(source.scenario)
    try:
        explored, sites = explore_parallel(source, strategy, workers=workers, backend=backend, **kw)
    except BackendError as e:
        raise CheckError(str(e)) from None
    if offered is not None:
        offered.seen.update(sites)
    return explored


def _check_loadable(path: str) -> None:
    """A Python scenario file that stands for an object of this process (``ffasim.api``)
    cannot be loaded by a worker: say so instead of failing in every worker."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return
    if "scenario_for(__file__)" in text:
        raise CheckError(
            "this scenario is a Python object of this process, which worker processes cannot "
            "load; check it with one worker, or from a TOML or Python scenario file"
        )


def replay_schedule(
    schedule: Schedule, *, variant: str | None = None, strict: bool = True
) -> ExecutionResult:
    """Run ``schedule`` again (on ``variant`` instead of its own, if given); the
    :class:`ExecutionResult`. Strict: ``ReplayDivergence`` when the execution leaves the
    schedule; lenient: take the decisions that fit, then run on without preemptions."""
    if not schedule.scenario:
        raise CheckError("the schedule names no scenario")
    scenario = load_scenario(schedule.scenario, schedule.hypervisor or None)
    var = resolve_variant(scenario, variant or schedule.variant or None)
    plan = fault_plan(schedule.faults)
    return replay(
        scenario_program(scenario, var),
        schedule.decisions,
        monitors_factory=monitors_for(scenario),
        faults=plan,
        max_faults=schedule.max_faults,
        strict=strict,
    )


def replay_file(path: str | os.PathLike[str]) -> tuple[ExecutionResult, list[TraceEvent]]:
    """Replay the schedule saved at ``path``: ``(ExecutionResult, trace)``."""
    result = replay_schedule(Schedule.load(path))
    return result, list(result.trace)
