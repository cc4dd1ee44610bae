"""Snapshot and restore of a booted system (check/snapshot.py): a restored execution is the
fresh one, event for event, for every built-in scenario; boots with decisions stay real."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from ffasim.check.explore import explore, run_execution
from ffasim.check.monitors import default_monitors
from ffasim.check.schedule import Decision
from ffasim.check.scheduler import Execution, ExecutionResult, FaultFilter, Program
from ffasim.check.snapshot import ENV_OFF, BootCache
from ffasim.check.strategies import DFSStrategy, RandomStrategy
from ffasim.check.strategies.replay import ReplayStrategy
from ffasim.machine import FAULT_CODES, Machine
from ffasim.machine.events import EventSink
from ffasim.scenario import BUILTIN_NAMES
from ffasim.scenario._check import load_scenario, scenario_program, scenario_state

_FIELDS = (
    "decisions",
    "findings",
    "trace",
    "steps",
    "preemptions",
    "faults",
    "problems",
    "pruned",
    "wake_edges",
    "threads",
    "notes",
    "virtual",
)


def _norm(x: Any) -> Any:
    """A step's key without object identity (two executions build different locks)."""
    if x is None or isinstance(x, (bool, int, str, bytes)):
        return x
    if isinstance(x, tuple):
        return tuple(_norm(y) for y in x)
    return (type(x).__name__, getattr(x, "name", None))


def _run(
    program: Program,
    decisions: Sequence[Decision],
    cache: BootCache | None,
    faults: FaultFilter | None = None,
) -> tuple[ExecutionResult, str]:
    """Replay ``decisions`` with the trace on: the result and the terminal state's digest."""
    strategy = ReplayStrategy(decisions, strict=True)
    strategy.new_execution()
    ex = Execution(program, strategy, default_monitors(), faults=faults, boot_cache=cache)
    result = ex.run()
    strategy.check_complete()
    state = scenario_state(ex.machine) if hasattr(ex.machine, "scenario_instance") else ""
    return result, state


def _same(a: ExecutionResult, b: ExecutionResult) -> None:
    for name in _FIELDS:
        assert getattr(a, name) == getattr(b, name), name
    assert [_norm(e) for e in a.events] == [_norm(e) for e in b.events]
    assert {i: _norm(tuple(ops)) for i, ops in a.extra.items()} == {
        i: _norm(tuple(ops)) for i, ops in b.extra.items()
    }


class _SiteLog(EventSink):
    def __init__(self) -> None:
        self.sites: set[str] = set()

    def fault(self, site: str, choices: tuple[int, ...]) -> int | None:
        self.sites.add(site)
        return None


def _after_boot_faults(program: Program) -> FaultFilter:
    """Every SMC fault and allocation failure at a site the boot does not reach."""
    log = _SiteLog()
    program(Machine(sink=log))
    boot_sites = frozenset(log.sites)

    def plan(site: str) -> tuple[int, ...] | None:
        if site in boot_sites:
            return None
        return FAULT_CODES if site.startswith("smc:") else (1,)

    return plan


def _schedules(
    program: Program, faults: FaultFilter | None, count: int, seed: int
) -> list[list[Decision]]:
    strategy = RandomStrategy(seed=seed, executions=None)
    out = []
    for _ in range(count):
        strategy.new_execution()
        r = run_execution(program, strategy, default_monitors(), faults=faults, record_trace=False)
        out.append(r.decisions)
    return out


def _check_exact(
    program: Program, faults: FaultFilter | None, schedules: list[list[Decision]]
) -> int:
    cache = BootCache(program, faults)
    for decisions in schedules:
        fresh, fresh_state = _run(program, decisions, None, faults)
        again, again_state = _run(program, decisions, cache, faults)
        _same(fresh, again)
        assert fresh_state == again_state
    assert cache.state == "ready", cache.why_off
    return cache.restores


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_restored_boot_runs_every_schedule_as_a_fresh_one(name: str) -> None:
    program = scenario_program(load_scenario(name), "reference")
    schedules = _schedules(program, None, 4, seed=1)
    faults = _after_boot_faults(program)
    faulted = _schedules(program, faults, 4, seed=2)
    assert _check_exact(program, None, schedules) == len(schedules) - 1
    assert _check_exact(program, faults, faulted) == len(faulted) - 1


@pytest.mark.parametrize(
    "name",
    [
        "partinfo-2vcpu",
        "send2-vm",
        "partinfo-vs-unmap",
        "send2-sp",
        "destroy-with-pending-notification",
    ],
)
def test_restored_boot_reproduces_findings(name: str) -> None:
    program = scenario_program(load_scenario(name), "seed-v1")
    report = explore(
        program, DFSStrategy(), monitors_factory=default_monitors, budget=60, stop_on_first=False
    )
    assert report.findings, "seed-v1 has known defects here"
    schedules = [r.decisions for _, r in report.findings]
    _check_exact(program, None, [*schedules, *schedules])


def test_each_restored_execution_has_its_own_scenario_instance() -> None:
    program = scenario_program(load_scenario("partinfo-2vcpu"), "reference")
    cache = BootCache(program)
    instances = []
    for _ in range(3):
        strategy = DFSStrategy()
        strategy.new_execution()
        ex = Execution(program, strategy, default_monitors(), record_trace=False, boot_cache=cache)
        ex.run()
        instances.append(ex.machine.scenario_instance.value)  # type: ignore[attr-defined]
    assert cache.restores == 2
    assert len({id(i) for i in instances}) == 3
    assert len({id(i.system) for i in instances}) == 3
    # Each execution recorded its own results: none saw another's steps.
    counts = [len(i.results) for i in instances]
    assert counts[1] == counts[2] == counts[0]


def test_a_boot_with_a_fault_decision_is_never_restored() -> None:
    program = scenario_program(load_scenario("partinfo-2vcpu"), "reference")

    def every_site(site: str) -> tuple[int, ...] | None:
        return FAULT_CODES if site.startswith("smc:") else (1,)

    cache = BootCache(program, every_site)
    strategy = DFSStrategy()
    for _ in range(3):
        assert strategy.new_execution()
        r = run_execution(
            program, strategy, default_monitors(), faults=every_site, boot_cache=cache
        )
        strategy.end_execution(r)
    assert cache.state == "off"
    assert cache.restores == 0


def test_snapshots_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_OFF, "1")
    program = scenario_program(load_scenario("partinfo-2vcpu"), "reference")
    cache = BootCache(program)
    for _ in range(2):
        strategy = DFSStrategy()
        strategy.new_execution()
        run_execution(program, strategy, default_monitors(), boot_cache=cache)
    assert cache.state == "off"
    assert cache.restores == 0


def test_exploration_with_snapshots_explores_the_same_schedules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    program = scenario_program(load_scenario("partinfo-2vcpu"), "reference")

    def decisions(off: bool) -> list[list[Decision]]:
        if off:
            monkeypatch.setenv(ENV_OFF, "1")
        else:
            monkeypatch.delenv(ENV_OFF, raising=False)
        seen: list[list[Decision]] = []
        strategy = DFSStrategy()
        original = strategy.end_execution

        def end(r: ExecutionResult) -> None:
            seen.append(r.decisions)
            original(r)

        strategy.end_execution = end  # type: ignore[method-assign]
        explore(program, strategy, monitors_factory=default_monitors, stop_on_first=False)
        return seen

    with_snapshots = decisions(False)
    assert decisions(True) == with_snapshots
    assert len(with_snapshots) > 100
